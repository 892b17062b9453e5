"""Validate an extractor script before it is published.

It must be UTF-8 Python under :data:`ops.extractor_store.MAX_SCRIPT_BYTES`, import, define
``extract()``, and give valid output within the time and memory limits on every file of the
built-in corpus (:mod:`streams.corpus`).  The checks run the script exactly as the worker
does, contained.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from ops.extractor_store import MAX_SCRIPT_BYTES, ScriptRejected
from ops.filetype import HEAD_BYTES, detect
from ops.settings import Settings
from streams.corpus import SAMPLES
from streams.extractor import Limits, Outcome, run_script


def limits_of(settings: Settings) -> Limits:
    return Limits(timeout_s=settings.extractor_timeout_s, memory_mb=settings.extractor_memory_mb)


async def check(settings: Settings, source: bytes) -> None:
    """The check :func:`ops.extractor_admin.publish` runs (an ``ops.extractor_admin.ScriptCheck``):
    :func:`validate` within the settings' limits."""
    await validate(source, limits_of(settings))


def static_problem(source: bytes) -> str | None:
    """What is wrong with the text itself, before running anything."""
    if not source.strip():
        return "the script is empty"
    if len(source) > MAX_SCRIPT_BYTES:
        return f"the script is {len(source)} bytes, at most {MAX_SCRIPT_BYTES} allowed"
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return "the script is not UTF-8 text"
    try:
        compile(text, "script.py", "exec")
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return None


async def validate(source: bytes, limits: Limits) -> None:
    """Raise :class:`ScriptRejected` with every failing sample, or return quietly."""
    problem = static_problem(source)
    if problem is not None:
        raise ScriptRejected(problem)
    with tempfile.TemporaryDirectory(prefix="intellidox-check-") as tmp:
        directory = Path(tmp)
        script = directory / "script.py"
        script.write_bytes(source)
        names = sorted(SAMPLES)
        outcomes = await asyncio.gather(*(_run_sample(script, directory, n, limits) for n in names))
    failed: dict[str, list[str]] = {}
    for name, outcome in zip(names, outcomes, strict=True):
        if outcome.error:
            failed.setdefault(outcome.error, []).append(name)
    if failed:
        raise ScriptRejected("; ".join(f"{', '.join(n)}: {e}" for e, n in failed.items()))


async def _run_sample(script: Path, directory: Path, name: str, limits: Limits) -> Outcome:
    data = SAMPLES[name]()
    path = directory / name
    path.write_bytes(data)
    file_type, mime = detect(data[:HEAD_BYTES], path)
    info = {
        "file_name": name,
        "file_size": len(data),
        "file_type": file_type,
        "mime_type": mime,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return await run_script(script, path, info, limits)
