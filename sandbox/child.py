"""What runs first inside the sandbox (its source is passed to `python -I -u -c`; it imports
nothing of the project): set the limits, read the code from stdin, run it as __main__, and hand
back the pictures it made.

argv: [-c, SETTINGS_JSON] (the limits, the work folder, the pictures' fd). Limits are set
here, inside bubblewrap's user namespace, so that the process cap counts this sandbox's tasks
only (set outside, it would count all of the user's). Pictures: PNG files the code wrote in its
folder (or, when it wrote none, the matplotlib figures still open at the end: `plt.show()` draws
nothing without a screen) go to the pictures' fd as one JSON line each.
"""
import io
import json
import os
import sys

try:
    import resource
except ImportError:  # Windows (only the loudly named unisolated mode runs there): no rlimits
    resource = None  # type: ignore[assignment]


def set_limits(limits: dict) -> None:
    if resource is None:
        return
    os.nice(limits["nice"])
    import threading

    threading.Thread(target=nice_autogroup, args=(limits["nice"],), name="aione-autogroup", daemon=True).start()
    cpu = limits["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU first, SIGKILL a second later
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_FSIZE", limits["file_bytes"]),
                        ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_CORE", 0)):
        if value is not None:  # no process cap outside a user namespace (see sandbox/runs.py)
            resource.setrlimit(getattr(resource, name), (value, value))


HANGUL_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "NanumBarunGothic", "Malgun Gothic",
                "AppleGothic", "UnDotum")


def prepare_matplotlib() -> None:
    """Korean text in figures: after DejaVu Sans, matplotlib falls back glyph by glyph to the
    Korean fonts the system has (those it lacks are skipped quietly). Written as the run's
    matplotlibrc, so nothing is imported unless the code uses matplotlib."""
    import logging

    folder = os.environ.get("MPLCONFIGDIR")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "matplotlibrc"), "w") as f:
        f.write("font.family: DejaVu Sans, " + ", ".join(HANGUL_FONTS) + "\n")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def nice_autogroup(nice: int) -> None:
    """A new session is its own scheduling group (autogroup), where nice alone changes nothing.
    The kernel takes one such write per 100 ms machine-wide (EAGAIN otherwise), so it is retried
    here, beside the code, which never waits for it."""
    import errno
    import time

    for _ in range(100):
        try:
            fd = os.open("/proc/self/autogroup", os.O_WRONLY)
        except OSError:
            return  # no autogroups on this kernel: nice is enough
        try:
            os.write(fd, str(nice).encode())
            return
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                return
        finally:
            os.close(fd)
        time.sleep(0.03)


def run_main(main_path: str) -> int:
    import runpy
    import traceback

    try:
        runpy.run_path(main_path, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException as exc:  # the code's own error: its traceback, without this file's frames
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != main_path:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


def pngs(workspace: str) -> list[str]:
    return sorted(name for name in os.listdir(workspace) if name.lower().endswith(".png"))


def save_open_figures(workspace: str) -> None:
    """Figures the code drew but did not save (plt.show()), when it saved no picture itself."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None or pngs(workspace):
        return
    for number in pyplot.get_fignums():
        pyplot.figure(number).savefig(os.path.join(workspace, f"figure-{number}.png"))


def send_pictures(workspace: str, fd: int, limit: int) -> None:
    import base64

    with os.fdopen(fd, "w") as out:
        for name in pngs(workspace)[:limit]:
            with open(os.path.join(workspace, name), "rb") as f:
                data = f.read()
            out.write(json.dumps({"name": name, "png_base64": base64.b64encode(data).decode()}) + "\n")


def main() -> None:
    limits = json.loads(sys.argv[1])
    workspace = limits["workspace"]
    main_path = os.path.join(workspace, "main.py")
    code = sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # input() sees an end of file, not the runner's pipe
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - stdin for the run, open until it ends
    with open(main_path, "wb") as f:
        f.write(code)
    sys.path[:0] = [workspace]
    if limits["site_packages"]:
        import site

        site.addsitedir(limits["site_packages"])
    for stream in (sys.stdout, sys.stderr):
        assert isinstance(stream, io.TextIOWrapper)
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    prepare_matplotlib()
    set_limits(limits)
    exit_code = run_main(main_path)
    try:
        save_open_figures(workspace)
        send_pictures(workspace, limits["picture_fd"], limits["max_images"])
    except Exception as exc:
        print(f"[sandbox] pictures not returned: {exc}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code if 0 <= exit_code < 256 else 1)


if __name__ == "__main__":  # python -c runs it as __main__; tests import its names
    main()
