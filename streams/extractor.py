"""Run an extractor script on a file, contained: ``run_script(script, path, info, limits)``.

Every script runs in a bubblewrap sandbox (:mod:`streams.sandbox_command`): uid 65534, no
capabilities, no network, a read-only view without the repository or any service data, only
its one input file, rlimits, and nothing of it outlives the job.  The sandboxes are warm
(:mod:`streams.sandbox_pool`): one pool per process, started on first use.  A script that
hangs, crashes, eats memory or returns junk costs one document an extraction error.

Where bubblewrap cannot run, every call fails closed with the reason, unless
``INTELLIDOX_EXTRACTOR_ALLOW_WEAK_SANDBOX`` allows the old rlimits-only mode (development).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from pathlib import Path
from typing import Any

from ops.settings import Settings, get_settings
from streams.sandbox_command import Runtime, SandboxUnavailable, check_available
from streams.sandbox_job import Job, Limits, Outcome
from streams.sandbox_pool import Pool, PoolConfig

__all__ = ["Limits", "Outcome", "pool_config", "run_script"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pool: Pool | SandboxUnavailable | None = None


async def run_script(script: Path, path: Path, info: dict[str, Any], limits: Limits) -> Outcome:
    try:
        source = script.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Outcome({}, f"cannot read the script: {exc}")
    pool = _pool if _pool is not None else await asyncio.to_thread(_default_pool)  # probes once
    if isinstance(pool, SandboxUnavailable):
        return Outcome({}, f"extractor scripts are not run: {pool}")
    return await pool.run(Job(source, path, info, limits))


def pool_config(settings: Settings, runtime: Runtime) -> PoolConfig | SandboxUnavailable:
    """Bubblewrap if it works here; else the weak mode if allowed; else the reason (closed)."""
    contained = PoolConfig(settings.extractor_pool_size, settings.extractor_pool_jobs)
    try:
        check_available(runtime)
    except SandboxUnavailable as exc:
        if not settings.extractor_allow_weak_sandbox:
            hint = "INTELLIDOX_EXTRACTOR_ALLOW_WEAK_SANDBOX=1 runs them uncontained (dev only)"
            return SandboxUnavailable(f"{exc}; {hint}")
        log.warning("extractor scripts run WITHOUT a sandbox (weak mode): %s", exc)
        return PoolConfig(contained.size, contained.jobs_per_worker, contained=False)
    return contained


def _default_pool() -> Pool | SandboxUnavailable:
    global _pool
    with _lock:
        if _pool is None:
            runtime = Runtime.current()
            config = pool_config(get_settings(), runtime)
            if isinstance(config, SandboxUnavailable):
                log.error("extractor scripts will fail: %s", config)
                _pool = config
            else:
                _pool = Pool(config, runtime)
                atexit.register(_pool.close)
        return _pool
