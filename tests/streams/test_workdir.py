"""Where the worker keeps the objects its extraction reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from streams import workdir


def test_memory_when_it_holds_every_extraction_at_the_largest_size(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    largest = (free - workdir.SPARE) // workdir.AT_ONCE
    slack = 64 << 20  # other writers on the same disk meanwhile
    assert workdir.choose("", largest - slack, shm=tmp_path) == tmp_path
    too_big = largest + slack
    assert workdir.choose("", too_big, shm=tmp_path) == Path(tempfile.gettempdir())


def test_no_such_directory_means_the_usual_one(tmp_path: Path) -> None:
    assert workdir.choose("", 1, shm=tmp_path / "none") == Path(tempfile.gettempdir())


def test_the_setting_decides_when_given(tmp_path: Path) -> None:
    assert workdir.choose(str(tmp_path / "here"), 1 << 30, shm=tmp_path) == tmp_path / "here"


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_starting_worker_removes_only_what_dead_workers_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"{workdir.EXTRACT_PREFIX}{_dead_pid()}-abc"
    live = workdir.job_dir()  # this process's: a live worker's job
    other = tmp_path / "intellidox-sandbox-1-abc"  # not an extraction's
    for directory in (dead, other):
        directory.mkdir()
    for directory in (dead, live, other):
        (directory / "object").write_bytes(b"someone's bytes")
    assert workdir.remove_dead() == [dead]
    assert not dead.exists() and live.exists() and other.exists()


async def test_a_finished_job_s_directory_goes_without_holding_up_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with workdir.extraction_dir() as job:
        assert job.parent == tmp_path
        assert job.name.startswith(f"{workdir.EXTRACT_PREFIX}{os.getpid()}-")
        (job / "object").write_bytes(b"x" * 4096)
    await asyncio.gather(*workdir._removing)
    assert not job.exists() and not workdir._removing
