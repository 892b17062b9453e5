"""Extractor script catalogue logic, the sample corpus and validation (no services)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops import extractor_store as store
from ops.extractor_admin import BadSince, parse_since
from ops.filetype import detect
from schemas.scripts import ACTIVE_KEY, version_key
from streams.context import DEFAULT_SCRIPT, DEFAULT_VERSION
from streams.corpus import SAMPLES
from streams.extractor import Limits
from streams.script_check import static_problem, validate

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _published(state: store.ScriptState, source: bytes) -> str:
    sha = hashlib.sha256(source).hexdigest()
    record = store.version_record(state.next_version(sha), sha, len(source), NOW, None)
    store.fold(state, version_key(record.version), record)
    return record.version


def test_versions_are_numbered_and_activation_keeps_a_history_for_rollback() -> None:
    state = store.ScriptState()
    assert state.active_version == store.DEFAULT_VERSION == DEFAULT_VERSION
    one, two = _published(state, b"one"), _published(state, b"two")
    assert one == "v1-" + hashlib.sha256(b"one").hexdigest()[:12] and two.startswith("v2-")
    store.fold(state, ACTIVE_KEY, store.activation(state, one, NOW))
    store.fold(state, ACTIVE_KEY, store.activation(state, two, NOW))
    assert state.active is not None and state.active.history == ("default-1", one)
    back = store.rollback(state, NOW)
    assert back.version == one and back.previous_version == two
    store.fold(state, ACTIVE_KEY, back)
    store.fold(state, ACTIVE_KEY, store.rollback(state, NOW))
    assert state.active_version == "default-1" and state.active.object_key is None
    with pytest.raises(store.UnknownVersion):
        store.rollback(state, NOW)
    with pytest.raises(store.UnknownVersion):
        state.get("v7-unknown")
    assert store.version_number("v12-abc") == 12 and store.version_number("default-1") == 0


def test_the_corpus_has_every_required_type(tmp_path: Path) -> None:
    kinds = set()
    for name, make in SAMPLES.items():
        path = tmp_path / name
        path.write_bytes(make())
        kinds.add(detect(path.read_bytes()[:4096], path)[0])
    assert kinds == {"pdf", "png", "jpeg", "docx", "xlsx", "text", "zip"}


def test_static_problems_are_found_before_running_anything() -> None:
    assert static_problem(b"  \n") == "the script is empty"
    assert "SyntaxError" in str(static_problem(b"def extract(:\n"))
    assert "UTF-8" in str(static_problem(b"\xff\xfe"))
    assert "at most" in str(static_problem(b"#" * (2 << 20)))
    assert static_problem(b"def extract(path, info):\n    return {}\n") is None


async def test_the_default_script_passes_validation() -> None:
    await validate(DEFAULT_SCRIPT.read_bytes(), Limits())


async def test_validation_names_the_samples_that_failed() -> None:
    picky = b"def extract(path, info):\n    assert info['file_type'] != 'pdf'\n    return {}\n"
    with pytest.raises(store.ScriptRejected) as refused:
        await validate(picky, Limits(timeout_s=10))
    assert str(refused.value).startswith("sample.pdf: AssertionError")


def test_since_is_relative_or_iso() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(BadSince):
        parse_since("yesterday")
