"""A small seccomp filter for the sandbox (bubblewrap ``--seccomp FD``).

Two holes the namespaces leave when the sandbox runs as root's uid 65534 in the host's user
namespace: kernel keyrings are per uid, so ``add_key``/``keyctl`` would let one document's
script leave data for a later one; and new user namespaces would hand a script capabilities
over fresh namespaces of its own (kernel attack surface, no way back to the host's).  The
filter refuses exactly these: add_key, request_key, keyctl (EPERM); clone and unshare with
CLONE_NEWUSER (EPERM); clone3 (ENOSYS, so libc falls back to clone, whose flags we can see).
Other architectures' system calls are refused (the sandbox runs native code only).
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

CLONE_NEWUSER = 0x10000000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_EPERM = 0x00050000 | errno.EPERM
_ENOSYS = 0x00050000 | errno.ENOSYS
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian low word)


@dataclass(frozen=True)
class _Arch:
    audit: int
    clone: int
    unshare: int
    clone3: int
    keys: tuple[int, ...]  # add_key, request_key, keyctl
    x32: bool = False


_ARCHES = {
    "x86_64": _Arch(0xC000003E, 56, 272, 435, (248, 249, 250), x32=True),
    "aarch64": _Arch(0xC00000B7, 220, 97, 435, (217, 218, 219)),
}


def supported() -> bool:
    return platform.machine() in _ARCHES


@dataclass(frozen=True)
class _Op:
    code: int
    k: int = 0
    true: str | None = None  # jump to this label when the test holds
    false: str | None = None


def program(machine: str | None = None) -> bytes:
    """The BPF program as bubblewrap reads it: an array of ``struct sock_filter``."""
    arch = _ARCHES[machine or platform.machine()]
    code: list[_Op | str] = [_Op(_LD_W_ABS, _ARCH), _Op(_JEQ, arch.audit, false="kill")]
    code.append(_Op(_LD_W_ABS, _NR))
    if arch.x32:
        code.append(_Op(_JGE, 0x40000000, true="eperm"))
    code += [_Op(_JEQ, nr, true="eperm") for nr in arch.keys]
    code.append(_Op(_JEQ, arch.clone3, true="enosys"))
    code += [_Op(_JEQ, arch.clone, true="flags"), _Op(_JEQ, arch.unshare, true="flags")]
    code += [_Op(_RET, _ALLOW), "flags", _Op(_LD_W_ABS, _ARG0)]
    code += [_Op(_JSET, CLONE_NEWUSER, true="eperm"), _Op(_RET, _ALLOW)]
    code += ["eperm", _Op(_RET, _EPERM), "enosys", _Op(_RET, _ENOSYS)]
    code += ["kill", _Op(_RET, _KILL_PROCESS)]
    return _assemble(code)


def _assemble(code: list[_Op | str]) -> bytes:
    """Resolve the labels (the strings) into BPF's relative jump offsets."""
    labels: dict[str, int] = {}
    ops: list[_Op] = []
    for entry in code:
        if isinstance(entry, str):
            labels[entry] = len(ops)
        else:
            ops.append(entry)
    out = b""
    for index, op in enumerate(ops, start=1):
        jt = labels[op.true] - index if op.true else 0
        jf = labels[op.false] - index if op.false else 0
        out += struct.pack("=HBBI", op.code, jt, jf, op.k)
    return out


def program_fd() -> int:
    """An inheritable descriptor holding the program, for ``bwrap --seccomp FD``."""
    fd = os.memfd_create("intellidox-seccomp", 0)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
