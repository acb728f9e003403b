"""chat:app under uvicorn in its own process, for benchmarks: configured by AIONE_* variables."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, env: dict[str, str], data: Path, wait_for_model: str | None = "chat") -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "chat:app", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=os.environ | {"AIONE_PATHS__DATA": str(data)} | env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(timeout=300)
        deadline = time.monotonic() + 60
        while True:  # up, and (if asked) the preloaded model resident
            try:
                state = self.client.get(self.url + "/api/slot").json()
                if wait_for_model is None or state.get("resident") == wait_for_model:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("server did not come up")
            time.sleep(0.1)

    def chat(self, message: str) -> float:
        """Send one message; the answer's tokens/s from the server's own `done` timings."""
        with self.client.stream("POST", self.url + "/chat_stream_sse_fetch", json={"message": message}) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and '"done"' in line:
                    return json.loads(line[5:])["timings"]["tokens_per_s"]
        raise RuntimeError("no done frame")

    def slot(self) -> dict:
        return self.client.get(self.url + "/api/slot").json()

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(30)
