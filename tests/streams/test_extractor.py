"""Extractor scripts run contained: limits, junk and crashes become an error, never a stall."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.extractor import Limits, Outcome, run_script
from streams.sandbox import check_result

INFO = {"file_name": "a.txt", "file_size": 5, "file_type": "text", "mime_type": "text/plain"}


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(body)
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "a.txt"
    path.write_text("hello world\nbye\n")
    return path


async def test_the_default_script_extracts_text_facts(sample: Path) -> None:
    default = Path(__file__).parents[2] / "streams" / "extractors" / "default.py"
    outcome = await run_script(default, sample, INFO, Limits())
    assert outcome.error is None
    assert outcome.meta["text_lines"] == 2 and outcome.meta["text_words"] == 3


async def test_a_script_that_sleeps_forever_is_cut_at_its_time_limit(
    tmp_path: Path, sample: Path
) -> None:
    script = _script(tmp_path, "import time\ndef extract(path, info):\n    time.sleep(3600)\n")
    started = time.monotonic()
    outcome = await run_script(script, sample, INFO, Limits(timeout_s=1))
    assert outcome.error and "time limit" in outcome.error and outcome.meta == {}
    assert time.monotonic() - started < 5


async def test_a_script_that_allocates_10_gb_is_stopped_by_its_memory_limit(
    tmp_path: Path, sample: Path
) -> None:
    script = _script(
        tmp_path, "def extract(path, info):\n    x = bytearray(10 * 2**30)\n    return {}\n"
    )
    outcome = await run_script(script, sample, INFO, Limits(memory_mb=512))
    assert outcome.error and "MemoryError" in outcome.error and "512 MB" in outcome.error


async def test_a_crash_and_junk_output_are_errors(tmp_path: Path, sample: Path) -> None:
    crash = _script(tmp_path, "import os\ndef extract(path, info):\n    os._exit(3)\n")
    assert "crashed" in str((await run_script(crash, sample, INFO, Limits())).error)
    junk = _script(tmp_path, "def extract(path, info):\n    return {'nested': {'a': 1}}\n")
    assert "not str, int, float or bool" in str(
        (await run_script(junk, sample, INFO, Limits())).error
    )
    missing = _script(tmp_path, "x = 1\n")
    assert "no extract" in str((await run_script(missing, sample, INFO, Limits())).error)


async def test_scripts_have_no_network(tmp_path: Path, sample: Path) -> None:
    script = _script(
        tmp_path,
        (
            "import socket\ndef extract(path, info):\n"
            "    s = socket.create_connection(('127.0.0.1', 19092), timeout=2)\n"
            "    return {'net': True}\n"
        ),
    )
    outcome = await run_script(script, sample, INFO, Limits())
    assert outcome.error and "ConnectionRefusedError" in outcome.error  # its own empty network


def test_results_must_be_flat_and_bounded() -> None:
    assert check_result({"a": 1, "b": "x" * 5000, "c": None})["b"] == "x" * 2000
    for bad in ([1], {"": 1}, {"a": float("nan")}, {str(i): i for i in range(201)}):
        with pytest.raises(ValueError):
            check_result(bad)


async def test_threads_and_child_programs_still_work_in_the_sandbox(
    tmp_path: Path, sample: Path
) -> None:
    script = _script(
        tmp_path,
        (
            "import subprocess, threading\ndef extract(path, info):\n"
            "    seen = []\n"
            "    worker = threading.Thread(target=lambda: seen.append(open(path).read()))\n"
            "    worker.start(); worker.join()\n"
            "    code = subprocess.run(['/usr/bin/true']).returncode\n"
            "    return {'thread_read': len(seen[0]), 'program_exit': code}\n"
        ),
    )
    outcome = await run_script(script, sample, INFO, Limits())
    assert outcome == Outcome({"thread_read": 16, "program_exit": 0}, None)


async def test_a_script_may_build_on_the_built_in_one_but_sees_no_other_project_code(
    tmp_path: Path, sample: Path
) -> None:
    script = _script(
        tmp_path,
        (
            "import importlib\nfrom streams.extractors.default import extract as default\n"
            "def extract(path, info):\n"
            "    meta = default(path, info)\n"
            "    for name in ('ops.settings', 'streams.extraction', 'gateway'):\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "            meta[name] = 'imported'\n"
            "        except ImportError:\n"
            "            pass\n"
            "    return meta\n"
        ),
    )
    outcome = await run_script(script, sample, INFO, Limits())
    assert outcome.error is None and outcome.meta["text_words"] == 3
    assert "imported" not in outcome.meta.values()
