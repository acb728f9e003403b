"""The sandbox (sandbox/runs.py): every attack runs real code through the real bubblewrap sandbox.

Network (this server's own port, another local port), the user's files (data folder, SQLite
file, project files, home), the server's environment, writes outside the work folder, a fork
bomb, memory, CPU and wall-clock limits, an output flood, invalid UTF-8, matplotlib pictures,
Stop, the line of runs, what is stored, and bad requests."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from chat import create_app
from core.events import RunFinished, RunOutput, RunResult
from sandbox.runs import KILL_GRACE_S, Sandbox
from settings import Sandbox as SandboxSettings
from tests.conftest import ROOT, make_settings, read_frames, serve
from tests.fakes import FakeChatEngine

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_code(code: str, **limits) -> tuple[RunResult, list[RunOutput]]:
    """Probe a sandbox with these limits (it must be bubblewrap here) and run `code` in it."""
    async def go():
        sandbox = Sandbox(SandboxSettings(**limits))
        isolation = await sandbox.probe()
        assert isolation.kind == "bubblewrap", isolation.reason
        outputs, result = [], None
        async for event in sandbox.run(textwrap.dedent(code), sandbox.new_run_id()):
            if isinstance(event, RunOutput):
                outputs.append(event)
            elif isinstance(event, RunFinished):
                result = event.result
        return result, outputs
    return asyncio.run(go())


@pytest.fixture
def server(isolated_data, monkeypatch):
    """The real app (a fake chat engine: these tests are about code runs), with secrets in its
    environment that no run may see."""
    monkeypatch.setenv("AIONE_TEST_SECRET", "s3cret-token-7f2a")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    settings = make_settings(isolated_data)
    settings.sandbox = SandboxSettings(timeout_s=30)
    with serve(create_app(settings, engines={"chat": FakeChatEngine(replies=[["```python\nprint(1)\n```"]])})) as url:
        with httpx.Client(base_url=url, headers={"Origin": url}, timeout=60) as client:
            yield client, settings


def run_json(client: httpx.Client, code: str, **body) -> dict:
    response = client.post("/api/sandbox/run", json={"code": textwrap.dedent(code), "stream": False, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_probe_says_bubblewrap_in_health_and_config(server):
    client, _ = server
    for sandbox in (client.get("/health").json()["sandbox"], client.get("/api/config").json()["sandbox"]):
        assert sandbox["enabled"] is True and sandbox["isolation"] == "bubblewrap"
        assert sandbox["limits"]["timeout_s"] == 30 and sandbox["processes"]


def test_no_network_not_even_this_server_or_another_local_port(server):
    client, _ = server
    port = int(str(client.base_url).rsplit(":", 1)[1])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        other = listener.getsockname()[1]
        result = run_json(client, f"""
            import socket
            for port in ({port}, {other}):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2)
                    print("CONNECTED", port)
                except OSError as exc:
                    print("refused", port, type(exc).__name__)
            try:
                socket.getaddrinfo("example.com", 80)
                print("RESOLVED")
            except OSError:
                print("no dns")
            print(sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]))
        """)
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing reached the other local service
    assert "CONNECTED" not in result["stdout"] and "RESOLVED" not in result["stdout"]
    assert f"refused {port}" in result["stdout"] and f"refused {other}" in result["stdout"]
    assert "['lo']" in result["stdout"]  # its own loopback only, no interface of the host
    assert client.get("/health").status_code == 200


def test_the_users_files_and_the_servers_environment_are_invisible(server):
    client, settings = server
    data = settings.paths.data.resolve()
    home_marker = Path.home() / f".aione-sandbox-test-{os.getpid()}"
    home_marker.write_text("private")
    targets = [data, data / "sessions.db", ROOT / "chat.py", ROOT / "settings.py", home_marker, ROOT / ".venv" / "bin"]
    try:
        result = run_json(client, f"""
        import glob, os
        for path in {[str(p) for p in targets]!r}:
            try:
                print("GOT-LISTING" if os.path.isdir(path) and os.listdir(path) else
                      "GOT-CONTENT" if open(path, "rb").read(16) else "GOT-EMPTY", path)
            except OSError as exc:
                print("missing", path, type(exc).__name__)
        print("ENV", sorted(os.environ))
        for name in glob.glob("/proc/*/environ"):
            try:
                print("PROC", name, open(name, "rb").read())
            except OSError:
                pass
        print("PIDS", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        print("HOME", sorted(os.listdir({str(Path.home())!r})) if os.path.isdir({str(Path.home())!r}) else [])
    """)
    finally:
        home_marker.unlink()
    out = result["stdout"]
    # The home folder exists inside only where the interpreter lives under it (pyenv): that path alone.
    assert set(json.loads(out.split("HOME ")[1].splitlines()[0].replace("'", '"'))) <= {".pyenv", ".local"}
    assert "GOT-" not in out, out
    assert out.count("missing") == len(targets)
    assert "s3cret-token-7f2a" not in out and "proxy.invalid" not in out and "AIONE" not in out
    assert "/proc/1/environ" in out  # it was read: the sandbox's own pid 1, with the scrubbed environment
    pids = json.loads(out.split("PIDS ")[1].splitlines()[0])
    assert max(pids) < 10  # its own pid namespace: none of the host's processes
    assert (settings.paths.data / "sessions.db").is_file() or any(settings.paths.data.iterdir())


def test_writes_stay_in_the_private_work_folder(server, tmp_path):
    client, settings = server
    marker = f"aione-escape-{os.getpid()}-{time.monotonic_ns()}"
    outside = [f"/tmp/{marker}", str(ROOT / marker), str(settings.paths.data.resolve() / marker), f"/{marker}",
               f"/usr/{marker}", str(Path.home() / marker)]
    result = run_json(client, f"""
        import os
        open("inside.txt", "w").write("ok")
        print("inside", os.path.abspath("inside.txt"))
        for path in {outside!r}:
            try:
                open(path, "w").write("escaped")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
    """)
    assert "inside /workspace/inside.txt" in result["stdout"]
    for path in outside:
        assert not Path(path).exists(), f"{path} appeared on the host"
    assert f"refused /usr/{marker}" in result["stdout"]


def sandbox_processes() -> set[Path]:
    """Processes of any sandbox run on this machine (the runner's settings are on their command line)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b'"picture_fd"' in cmdline.read_bytes():
                found.add(cmdline.parent)
        except OSError:
            pass
    return found


FORK_BOMB = """
    import os, time
    made = 0
    try:
        for _ in range(500):
            if os.fork() == 0:
                time.sleep(10)
                os._exit(0)
            made += 1
    except OSError as exc:
        print("refused after", made, exc.errno)
"""


def made_before_refusal(stdout: str) -> int:
    """How many forks FORK_BOMB made before the first refusal (fails when none was refused)."""
    assert "refused after" in stdout, stdout
    return int(stdout.split("refused after ")[1].split()[0])


def test_a_fork_bomb_is_capped_and_leaves_nothing_behind():
    before = sandbox_processes()
    result, _ = run_code(FORK_BOMB + """
        import subprocess
        try:
            subprocess.run(["/bin/true"])
            print("SUBPROCESS RAN")
        except OSError as exc:
            print("no subprocess", exc.errno)
        import threading
        threads = [threading.Thread(target=time.sleep, args=(0.01,)) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print("threads ok")
    """, max_processes=16, timeout_s=20)
    out = result.stdout
    assert made_before_refusal(out) <= 16, out
    assert "threads ok" in out and (os.geteuid() != 0 or "SUBPROCESS RAN" not in out)
    time.sleep(0.2)
    assert not sandbox_processes() - before, "sandbox processes outlived their run"


def test_memory_beyond_the_limit_fails_inside():
    result, _ = run_code("x = bytearray(3 * 1024 ** 3)\nprint('ALLOCATED')", memory_mb=256)
    assert "ALLOCATED" not in result.stdout and "MemoryError" in result.stderr
    assert result.reason == "memory_limit" and result.exit_code == 1


def test_an_infinite_loop_is_killed_at_the_timeout():
    result, _ = run_code("while True:\n    pass", timeout_s=1.5, cpu_seconds=60)
    assert result.timed_out and result.killed and result.reason == "timeout" and result.exit_code is None
    assert 1500 <= result.duration_ms < (1.5 + KILL_GRACE_S) * 1000


def test_cpu_seconds_are_capped():
    result, _ = run_code("while True:\n    pass", timeout_s=30, cpu_seconds=1)
    assert result.reason == "cpu_time" and result.killed and not result.timed_out
    assert result.duration_ms < 10_000


def test_sleeping_past_the_timeout_is_killed_too():
    result, _ = run_code("import time\nprint('sleeping', flush=True)\ntime.sleep(60)", timeout_s=1)
    assert result.timed_out and result.stdout == "sleeping\n"


def test_an_output_flood_is_capped_and_the_servers_memory_stays_flat():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, outputs = run_code("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
                               max_output_bytes=100_000, timeout_s=20)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.reason == "output_limit" and result.killed
    assert result.stdout == "x" * 100_000 and sum(len(o.text) for o in outputs) == 100_000
    assert grown_kib < 50_000


def test_invalid_utf8_and_split_characters_come_through():
    result, _ = run_code("""
        import sys, time
        sys.stdout.buffer.write(b"bad \\xff\\xfe end\\n")
        sys.stdout.buffer.write("한".encode()[:2]); sys.stdout.buffer.flush(); time.sleep(0.05)
        sys.stdout.buffer.write("한".encode()[2:] + "글\\n".encode())
        print("\\udcff surrogate")
    """)
    assert result.exit_code == 0
    assert result.stdout == "bad \ufffd\ufffd end\n한글\n\\udcff surrogate\n"


def test_matplotlib_figures_come_back_as_pngs_and_are_stored(server):
    client, _ = server
    result = run_json(client, """
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3], [3, 1, 2])
        plt.savefig("chart.png")
        open("fake.png", "wb").write(b"not a png at all")
    """)
    assert result["exit_code"] == 0 and [p["name"] for p in result["images"]] == ["chart.png"]  # the fake is left out
    picture = result["images"][0]
    assert base64.b64decode(picture["png_base64"]).startswith(PNG_MAGIC) and (picture["width"], picture["height"]) == (640, 480)
    stored = client.get(picture["url"])
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
    assert stored.content.startswith(PNG_MAGIC)


def test_stop_ends_a_run_at_once_and_the_next_in_line_goes(server):
    client, _ = server
    frames_a: list = []
    stream_a = client.stream("POST", "/api/sandbox/run", json={"code": "import time\nprint('a', flush=True)\ntime.sleep(60)"})
    response_a = stream_a.__enter__()
    lines = response_a.iter_lines()
    for line in lines:
        if line.startswith("data:"):
            frames_a.append(json.loads(line[5:]))
            if frames_a[-1]["type"] == "stdout":
                break
    run_id = frames_a[0]["run_id"]

    frames_b: list = []
    second = threading.Thread(target=lambda: frames_b.extend(read_frames(client.post(
        "/api/sandbox/run", json={"code": "print('b ran')"}))))
    second.start()
    deadline = time.monotonic() + 10
    while client.get("/api/sandbox").json()["line"]["waiting"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    assert client.post(f"/api/sandbox/runs/{run_id}/stop").json() == {"stopped": True, "run_id": run_id}
    for line in lines:
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            frames_a.append(json.loads(line[5:]))
    stream_a.__exit__(None, None, None)
    assert time.monotonic() - started < 3
    end = frames_a[-1]
    assert end["type"] == "exit" and end["reason"] == "stopped" and end["killed"] and end["exit_code"] is None
    second.join(30)
    assert frames_b[0] == {"type": "status", "state": "queued", "position": 1, "eta_s": 0.0}
    assert "".join(f["text"] for f in frames_b[:-1] if f["type"] == "stdout") == "b ran\n"  # any chunking
    assert frames_b[-1] == "[DONE]"
    assert client.post(f"/api/sandbox/runs/{run_id}/stop").status_code == 404


def test_runs_are_stored_with_the_session_and_the_jsonl(server):
    client, settings = server
    session = client.post("/api/sessions", json={}).json()
    frames = read_frames(client.post("/chat_stream_sse_fetch", json={"message": "코드", "session_id": session["id"]}))
    turn_id = next(f for f in frames if isinstance(f, dict) and f["type"] == "done")["turn_id"]
    result = run_json(client, "print('저장')\nimport matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()",
                      session_id=session["id"], turn_id=turn_id)
    runs = client.get("/api/sandbox/runs", params={"session_id": session["id"]}).json()["runs"]
    assert len(runs) == 1 and runs[0]["id"] == result["run_id"] and runs[0]["turn_id"] == turn_id
    assert runs[0]["stdout"] == "저장\n" and runs[0]["exit_code"] == 0 and runs[0]["isolation"] == "bubblewrap"
    assert runs[0]["images"] == [result["images"][0]["id"]]
    logged = [json.loads(line) for path in settings.paths.logs.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert any(r["event"] == "sandbox_run" and r["id"] == result["run_id"] and r["code"].startswith("print") for r in logged)
    # Deleting the session deletes its runs and their pictures.
    assert client.delete(f"/api/sessions/{session['id']}").status_code == 200
    assert client.get(result["images"][0]["url"]).status_code == 404


def test_bad_requests_get_clear_errors(server):
    client, _ = server
    session = client.post("/api/sessions", json={}).json()["id"]
    other = client.post("/api/sessions", json={}).json()["id"]
    frames = read_frames(client.post("/chat_stream_sse_fetch", json={"message": "코드", "session_id": other}))
    turn = next(f for f in frames if isinstance(f, dict) and f["type"] == "done")["turn_id"]
    cases = [({"code": ""}, 422, "invalid_request"), ({"code": "  \n"}, 422, "empty_code"),
             ({"code": "x", "language": "bash"}, 422, "invalid_request"),
             ({"code": "x" * 50_001}, 422, "code_too_long"), ({"code": "x", "session_id": "nope"}, 404, "session_not_found"),
             ({"code": "x", "turn_id": 10**9}, 404, "turn_not_found"),
             ({"code": "x", "session_id": session, "turn_id": turn}, 422, "turn_not_in_session"),
             ({"code": "x", "extra": 1}, 422, "invalid_request"), ({"code": "x", "stream": "maybe"}, 422, "invalid_request")]
    for body, status, code in cases:
        response = client.post("/api/sandbox/run", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    response = client.post("/api/sandbox/run", content=b"print(1)", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert client.post("/api/sandbox/runs/unknown/stop").json()["error"]["code"] == "run_not_found"
    assert client.get("/api/sandbox/runs", params={"session_id": "nope"}).status_code == 404
    assert run_json(client, "print('still up')")["stdout"] == "still up\n"


def test_a_full_line_gets_429(isolated_data):
    settings = make_settings(isolated_data)
    settings.sandbox = SandboxSettings(concurrency=1, queue_limit=0, timeout_s=30)
    with serve(create_app(settings, engines={"chat": FakeChatEngine()})) as url, \
            httpx.Client(base_url=url, headers={"Origin": url}, timeout=60) as client:
        with client.stream("POST", "/api/sandbox/run", json={"code": "import time\ntime.sleep(30)"}) as running:
            lines = running.iter_lines()  # kept: a dropped iterator closes the stream, which ends the run
            run_id = json.loads(next(line for line in lines if line.startswith("data:"))[5:])["run_id"]
            refused = client.post("/api/sandbox/run", json={"code": "print(1)"})
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "sandbox_busy"
            assert "retry-after" in refused.headers
            client.post(f"/api/sandbox/runs/{run_id}/stop")


def test_no_bubblewrap_means_no_runs_unless_the_user_says_unisolated(isolated_data, tmp_path):
    settings = make_settings(isolated_data)
    settings.sandbox = SandboxSettings(bwrap_path=tmp_path / "missing-bwrap")
    with serve(create_app(settings, engines={"chat": FakeChatEngine()})) as url, \
            httpx.Client(base_url=url, headers={"Origin": url}) as client:
        config = client.get("/api/config").json()["sandbox"]
        assert config["enabled"] is False and config["isolation"] == "unavailable"
        assert "bwrap not found" in config["reason"]
        refused = client.post("/api/sandbox/run", json={"code": "print(1)"})
        assert refused.status_code == 503 and "bwrap not found" in refused.json()["error"]["message"]

    settings.sandbox = SandboxSettings(bwrap_path=tmp_path / "missing-bwrap", unsafe_allow_unisolated=True,
                                       memory_mb=256)
    with serve(create_app(settings, engines={"chat": FakeChatEngine()})) as url, \
            httpx.Client(base_url=url, headers={"Origin": url}, timeout=60) as client:
        health = client.get("/health").json()["sandbox"]
        assert health["isolation"] == "unisolated" and "NOT ISOLATED" in health["reason"]
        assert run_json(client, "print(2 + 2)")["stdout"] == "4\n"
        big = run_json(client, "x = bytearray(3 * 1024 ** 3)")
        assert big["reason"] == "memory_limit"  # rlimits still hold


def test_runs_are_niced_in_their_own_scheduling_group():
    result, _ = run_code("""
        import os, time
        print("nice", os.nice(0))
        time.sleep(0.3)  # the group's nice is set beside the code (the kernel allows one write per 100 ms)
        try:
            print(open("/proc/self/autogroup").read().strip())
        except OSError:
            print("no autogroup")
    """, nice=12)
    assert "nice 12\n" in result.stdout
    assert result.stdout.strip().endswith(("nice 12", "no autogroup"))


def test_a_run_whose_session_is_deleted_meanwhile_still_ends_cleanly(server):
    client, _settings = server
    session = client.post("/api/sessions", json={}).json()["id"]
    frames: list = []
    running = threading.Thread(target=lambda: frames.extend(read_frames(client.post("/api/sandbox/run", json={
        "code": "import time\ntime.sleep(1)\nprint('done')\nopen('p.png', 'wb').write(b'x')", "session_id": session}))))
    running.start()
    time.sleep(0.5)
    assert client.delete(f"/api/sessions/{session}").status_code == 200
    running.join(30)
    assert frames[-2]["type"] == "exit" and frames[-2]["exit_code"] == 0 and frames[-1] == "[DONE]"
    assert client.get("/api/sandbox/runs", params={"session_id": session}).status_code == 404
    assert run_json(client, "print('up')")["stdout"] == "up\n"


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner may reach (and run) `path`: every folder above it searchable."""
    for folder in [*reversed(path.parents), path]:
        if not folder.stat().st_mode & 0o001:
            return False
    return True


@pytest.mark.skipif(os.geteuid() != 0, reason="not root: the fork bomb test above already ran the RLIMIT_NPROC path")
def test_for_a_normal_user_the_process_cap_is_rlimit_nproc_inside_the_namespace():
    """What a desktop user gets (the server not root): the same sandbox command, run as `nobody`
    with the system Python, caps a fork bomb at max_processes by RLIMIT_NPROC alone (no seccomp)."""
    import subprocess

    from sandbox.runs import WORKSPACE, _runner_settings, bwrap_command, find_bwrap

    bwrap, python = find_bwrap(None), Path("/usr/bin/python3")
    if not (bwrap and python.is_file() and _reachable_by_others(Path(bwrap))):
        pytest.skip("no bwrap or system Python that the nobody user can run here")
    sandbox = Sandbox(SandboxSettings(python_path=python, max_processes=8))
    assert asyncio.run(sandbox.probe()).kind == "bubblewrap"
    read, write = os.pipe()
    command = bwrap_command(sandbox._bwrap, sandbox._mounts, sandbox._python,
                            _runner_settings(sandbox.cfg, sandbox._packages, WORKSPACE, write, True), None)
    code = textwrap.dedent(FORK_BOMB).encode()
    done = subprocess.run(command, input=code, capture_output=True, pass_fds=[write], timeout=60, user=65534,
                          group=65534, extra_groups=[], start_new_session=True)
    os.close(write)
    os.close(read)
    assert 1 <= made_before_refusal(done.stdout.decode() + done.stderr.decode()) < 8  # runner + forks: 8 tasks


def test_a_client_that_leaves_ends_its_run(server):
    client, _ = server
    with client.stream("POST", "/api/sandbox/run", json={"code": "import time\ntime.sleep(60)"}) as response:
        lines = response.iter_lines()
        assert '"run"' in next(line for line in lines if line.startswith("data:"))
        assert client.get("/api/sandbox").json()["line"]["running"] == 1
    deadline = time.monotonic() + 10
    while client.get("/api/sandbox").json()["line"]["running"]:
        assert time.monotonic() < deadline, "the run outlived its client"
        time.sleep(0.05)


def test_korean_text_in_a_figure_finds_a_korean_font():
    from matplotlib import font_manager

    from sandbox.child import HANGUL_FONTS
    if not {font.name for font in font_manager.fontManager.ttflist} & set(HANGUL_FONTS):
        pytest.skip("no Korean font on this machine (Debian: fonts-noto-cjk)")
    result, _ = run_code("""
        import matplotlib.pyplot as plt
        plt.title("제곱 그래프")
        plt.plot([1, 4, 9])
        plt.savefig("korean.png")
    """)
    assert result.exit_code == 0 and len(result.pictures) == 1
    assert "missing from font" not in result.stderr and result.stderr == ""
