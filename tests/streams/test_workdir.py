"""Where the worker keeps the objects its extraction reads."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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
