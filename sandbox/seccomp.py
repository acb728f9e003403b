"""A seccomp filter that refuses new processes but allows threads, for bubblewrap's `--seccomp FD`.

Why: RLIMIT_NPROC caps a sandbox's processes only for a non-root user (inside bwrap's user
namespace it counts that namespace's tasks alone). The kernel never applies it to uid 0, and a
server run as root maps the sandbox to uid 0 outside. There the filter is the cap: fork, vfork
and clone without CLONE_THREAD fail with EPERM; clone3 fails with ENOSYS so that glibc's
pthread_create falls back to clone (whose flags a filter can read). Syscalls of another ABI
(i386 `int 0x80`, x32) are refused outright, since their numbers differ.

The program is classic BPF (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k), built here
without libseccomp.
"""
from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data; arg0's low half (little-endian)
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000

# machine -> (audit arch, process-making syscalls refused with EPERM, clone, clone3)
_ARCHES = {
    "x86_64": (0xC000003E, (57, 58), 56, 435),  # fork, vfork; clone; clone3
    "aarch64": (0xC00000B7, (), 220, 435),       # no fork/vfork syscalls on arm64
}


def supported() -> bool:
    return platform.machine() in _ARCHES


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def no_new_processes_filter() -> bytes:
    """The filter program's bytes (what bwrap reads from the FD)."""
    if not supported():
        raise OSError(f"no seccomp filter for {platform.machine()}")
    arch, refused, clone, clone3 = _ARCHES[platform.machine()]
    deny = _RET, _ERRNO | errno.EPERM
    program = [
        (_LD_W_ABS, _OFFSET_ARCH),
        (_JEQ, arch, 1, 0),                      # native ABI: go on; else refuse
        deny,
        (_LD_W_ABS, _OFFSET_NR),
        (_JGE, _X32_BIT, 0, 1),                  # x32 numbers: refuse
        deny,
        *[step for nr in refused for step in ((_JEQ, nr, 0, 1), deny)],
        (_JEQ, clone3, 0, 1),
        (_RET, _ERRNO | errno.ENOSYS),
        (_JEQ, clone, 1, 0),
        (_RET, _ALLOW),
        (_LD_W_ABS, _OFFSET_ARG0),               # clone's flags
        (_JSET, _CLONE_THREAD, 0, 1),
        (_RET, _ALLOW),                          # a thread
        deny,                                    # a process
    ]
    return b"".join(_insn(code, k, jt, jf) for code, k, *jumps in program
                    for jt, jf in [tuple(jumps) if jumps else (0, 0)])
