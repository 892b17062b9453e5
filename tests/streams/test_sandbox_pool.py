"""The warm pool: sandboxes are reused, replaced when they must be, and leak nothing between
documents; without bubblewrap scripts fail closed unless the weak mode is allowed."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.settings import Settings
from streams.extractor import pool_config
from streams.sandbox_command import Runtime, SandboxUnavailable
from streams.sandbox_job import Job, Limits, Outcome, verdict
from streams.sandbox_pool import HOME_PREFIX, Pool, PoolConfig

DEFAULT = (Path(__file__).parents[2] / "streams" / "extractors" / "default.py").read_text()
TEXT_INFO = {"file_type": "text", "mime_type": "text/plain"}

# Looks for what an earlier job may have left, then leaves all of it behind itself.
LEAVES_TRACES = r"""
import builtins, glob, os, subprocess, sys

def extract(path, info):
    found = {
        "global": getattr(builtins, "left_behind", None),
        "scratch": len(glob.glob(os.environ["TMPDIR"] + "/left-behind*")),
        "process": subprocess.run(["pgrep", "-f", info["token"]]).returncode == 0,
        "inbox": ",".join(sorted(os.listdir(os.path.dirname(path)))),
    }
    builtins.left_behind = info["name"]
    open(os.environ["TMPDIR"] + "/left-behind-" + info["name"], "w").write("x")
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", info["token"]],
                     start_new_session=True)
    return found
"""


@pytest.fixture
def pool() -> Iterator[Pool]:
    started = Pool(PoolConfig(size=1, jobs_per_worker=3))
    yield started
    started.close()


def _job(tmp_path: Path, source: str, file_name: str, **info: object) -> Job:
    path = tmp_path / file_name
    path.write_text("hello world\n")
    return Job(source, path, {**TEXT_INFO, **info}, Limits(timeout_s=10))


async def test_a_warm_sandbox_serves_documents_until_its_quota(pool: Pool, tmp_path: Path) -> None:
    outcomes = [await pool.run(_job(tmp_path, DEFAULT, f"d{i}.txt")) for i in range(4)]
    assert {o.error for o in outcomes} == {None} and outcomes[3].meta["text_words"] == 2
    assert pool.started == 2  # three documents in the first sandbox, then a fresh one


async def test_any_failure_retires_the_sandbox(pool: Pool, tmp_path: Path) -> None:
    await pool.run(_job(tmp_path, DEFAULT, "a.txt"))
    failing = "def extract(path, info):\n    raise ValueError('no')\n"
    assert (await pool.run(_job(tmp_path, failing, "b.txt"))).error == "ValueError: no"
    assert (await pool.run(_job(tmp_path, DEFAULT, "c.txt"))).error is None
    assert pool.started == 2


async def test_a_document_sees_nothing_an_earlier_one_left_in_the_same_sandbox(
    pool: Pool, tmp_path: Path
) -> None:
    token = "intellidox-trace-" + uuid.uuid4().hex[:8]
    first = await pool.run(_job(tmp_path, LEAVES_TRACES, "one.txt", name="one", token=token))
    second = await pool.run(_job(tmp_path, LEAVES_TRACES, "two.txt", name="two", token=token))
    nothing = {"global": None, "scratch": 0, "process": False}
    assert first == Outcome({**nothing, "inbox": "one.txt"}, None)
    assert second == Outcome({**nothing, "inbox": "two.txt"}, None)
    assert pool.started == 1  # the same warm sandbox served both


async def test_a_cancelled_caller_kills_the_sandbox_it_used(pool: Pool, tmp_path: Path) -> None:
    sleeper = "import time\ndef extract(path, info):\n    time.sleep(60)\n"
    task = asyncio.create_task(pool.run(_job(tmp_path, sleeper, "a.txt")))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    outcome = await asyncio.wait_for(pool.run(_job(tmp_path, DEFAULT, "b.txt")), 10)
    assert outcome.error is None and pool.started == 2


async def test_a_missing_input_is_an_error_not_a_stall(pool: Pool, tmp_path: Path) -> None:
    job = Job(DEFAULT, tmp_path / "gone.txt", TEXT_INFO, Limits(timeout_s=10))
    outcome = await asyncio.wait_for(pool.run(job), 5)
    assert outcome.error and "No such file" in outcome.error


def test_without_bubblewrap_scripts_fail_closed_unless_weak_mode_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    refused = pool_config(Settings(), Runtime.current())
    assert isinstance(refused, SandboxUnavailable)
    assert "bubblewrap is not installed" in str(refused)
    assert "INTELLIDOX_EXTRACTOR_ALLOW_WEAK_SANDBOX" in str(refused)
    weak = pool_config(Settings(extractor_allow_weak_sandbox=True), Runtime.current())
    assert weak == PoolConfig(2, 200, contained=False)


async def test_the_weak_mode_still_runs_scripts_with_limits(tmp_path: Path) -> None:
    weak = Pool(PoolConfig(size=1, contained=False))
    try:
        assert (await weak.run(_job(tmp_path, DEFAULT, "a.txt"))).meta["text_lines"] == 1
        hog = "def extract(path, info):\n    x = bytearray(10 * 2**30)\n"
        job = dataclasses.replace(_job(tmp_path, hog, "b.txt"), limits=Limits(memory_mb=512))
        assert "MemoryError" in str((await weak.run(job)).error)
    finally:
        weak.close()


def test_a_new_pool_removes_what_a_killed_process_left_in_its_inboxes() -> None:
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    stale = Path(tempfile.gettempdir()) / f"{HOME_PREFIX}{dead_pid.pid}-test"
    (stale / "w0" / "inbox").mkdir(parents=True)
    (stale / "w0" / "inbox" / "document.pdf").write_bytes(b"someone's bytes")
    Pool(PoolConfig(size=0)).close()
    assert not stale.exists()


def test_only_clean_metadata_keeps_a_sandbox_in_service() -> None:
    limits = Limits(memory_mb=256)
    assert verdict({"meta": {"a": 1}, "clean": True}, limits).reusable
    assert not verdict({"meta": {"a": 1}, "clean": False}, limits).reusable
    nested = verdict({"meta": {"a": {"b": 1}}, "clean": True}, limits)
    assert not nested.reusable and "not str, int" in str(nested.outcome.error)
    memory = verdict({"error": "MemoryError: ", "clean": True}, limits).outcome
    assert memory.error == "MemoryError:  (memory limit 256 MB)"
    assert verdict({"crash": "killed by SIGXCPU"}, limits).outcome.error == (
        "the script crashed: killed by SIGXCPU"
    )
    assert verdict(["junk"], limits).outcome.error == "the sandbox sent a malformed reply"
