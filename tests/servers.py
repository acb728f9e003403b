"""Separate server processes the tests and benchmarks run against."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def start_llama_server(model: Path, n_ctx: int = 2048, threads: int = 1) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's own OpenAI-compatible server on a free loopback port: (process, /v1 URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/models", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("llama_cpp.server did not start")
        time.sleep(0.3)
