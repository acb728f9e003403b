"""The two install paths (install.sh for Linux, start_server.bat for Windows) install the same
things: every pinned version comes from install-pins.txt, and neither script hard-codes one."""
from __future__ import annotations

import re

from tests.conftest import ROOT


def pins() -> dict[str, str]:
    lines = (ROOT / "install-pins.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_both_scripts_read_every_runtime_pin_and_hard_code_none():
    runtime = {k: v for k, v in pins().items() if k != "TEST_MODELS"}
    assert set(runtime) == {"TORCH_VERSION", "LLAMA_CPP_VERSION", "SD_CPP_VERSION", "EMBEDDED_MODELS"}
    shell, batch = (ROOT / "install.sh").read_text(), (ROOT / "start_server.bat").read_text()
    for name, value in runtime.items():
        assert f"pin {name}" in shell, name
        assert f"%{name}%" in batch, name
        for version in re.findall(r"\d+\.\d+\.\d+", value):
            assert version not in shell and version not in batch, (name, version)
    for package in ("torch==", "llama-cpp-python==", "stable-diffusion-cpp-python==", "-r requirements.txt"):
        assert package in shell and package in batch, package
    for script in (shell, batch):
        assert "3, 11" in script  # the code needs Python 3.11 (asyncio.timeout)
