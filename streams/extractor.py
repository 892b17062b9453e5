"""Run the active extractor script on a file, contained in a child process.

Time limit (killed when over), memory limit (``RLIMIT_AS``), and no network (a fresh network
namespace) where the OS allows it: a script that hangs, crashes, eats memory or returns junk
costs one document an extraction error and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.settings import sandbox_environment

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 30.0
    memory_mb: int = 1024


@dataclass(frozen=True)
class Outcome:
    meta: dict[str, Any]
    error: str | None


def _contain(memory_mb: int) -> None:  # runs in the child, before exec (POSIX only)
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Without root this fails quietly (returns -1), and the script keeps the host's network.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)


async def run_script(script: Path, path: Path, info: dict[str, Any], limits: Limits) -> Outcome:
    preexec = (lambda: _contain(limits.memory_mb)) if os.name == "posix" else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.sandbox",
        str(script),
        str(path),
        json.dumps(info),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env=sandbox_environment(),  # no INTELLIDOX_* secrets for scripts
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limits.timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Outcome({}, f"the script ran over its {limits.timeout_s:g}s time limit")
    return _outcome(proc.returncode, out, err, limits)


def _outcome(code: int | None, out: bytes, err: bytes, limits: Limits) -> Outcome:
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        reply = {}
    if "meta" in reply and code == 0:
        return Outcome(reply["meta"], None)
    if "error" in reply:
        error = str(reply["error"])
        if "MemoryError" in error:
            error += f" (memory limit {limits.memory_mb} MB)"
        return Outcome({}, error)
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {code}"]
    return Outcome({}, f"the script crashed: {tail[0][:300]}")
