"""What one extraction asks of a sandbox, and what its reply means (pure, no processes).

Shared by the pool, the worker and :mod:`streams.extractor` (which re-exports
:class:`Limits` and :class:`Outcome`, the types its callers use).  The host never trusts a
reply: metadata is checked again here with the same rules the sandbox applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.sandbox import check_result


@dataclass(frozen=True)
class Limits:
    """Per-run limits: wall time, address space, processes, open files, bytes written."""

    timeout_s: float = 30.0
    memory_mb: int = 1024
    processes: int = 64
    open_files: int = 256
    file_size_mb: int = 256


@dataclass(frozen=True)
class Outcome:
    meta: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Job:
    """One script run on one file."""

    source: str
    path: Path
    info: dict[str, Any]
    limits: Limits

    @property
    def script_sha(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    def request(self, sandbox_path: str, send_source: bool) -> bytes:
        """The JSON line for the runner; the source only when the sandbox lacks it."""
        line = {
            "script": self.script_sha,
            "source": self.source if send_source else None,
            "path": sandbox_path,
            "info": self.info,
            "limits": dataclasses.asdict(self.limits),
        }
        return (json.dumps(line) + "\n").encode()


@dataclass(frozen=True)
class Verdict:
    """The outcome for the caller, and whether the sandbox may take another job."""

    outcome: Outcome
    reusable: bool


def verdict(reply: Any, limits: Limits) -> Verdict:
    """Read a runner reply; anything but clean metadata retires the sandbox."""
    if not isinstance(reply, dict):
        return Verdict(Outcome({}, "the sandbox sent a malformed reply"), False)
    if "meta" in reply:
        try:
            meta = check_result(reply["meta"])
        except ValueError as exc:
            return Verdict(Outcome({}, str(exc)), False)
        return Verdict(Outcome(meta, None), reply.get("clean") is True)
    if "error" in reply:
        return Verdict(Outcome({}, error_text(str(reply["error"]), limits)), False)
    if "crash" in reply:
        return Verdict(Outcome({}, f"the script crashed: {str(reply['crash'])[:300]}"), False)
    return Verdict(Outcome({}, "the sandbox sent a malformed reply"), False)


def error_text(error: str, limits: Limits) -> str:
    error = error[:500]
    if "MemoryError" in error:
        error += f" (memory limit {limits.memory_mb} MB)"
    return error


def timed_out(limits: Limits) -> Outcome:
    return Outcome({}, f"the script ran over its {limits.timeout_s:g}s time limit")
