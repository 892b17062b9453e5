"""Fields of extractor.scripts and docs.* records are checked before they name anything."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ops.settings import Settings
from schemas.documents import DocsConfirmed
from schemas.record import at_ms
from streams import scripts
from streams.context import DEFAULT_SCRIPT, WorkerContext
from streams.objects import InvalidObjectRef, object_ref

GOOD = "v3-1a2b3c4d5e6f"
SHA = "a" * 64
DOC = "01a2201b-f3de-7a5e-bee7-78d5fb90a97a"


def _ctx(tmp_path: Path) -> WorkerContext:
    return WorkerContext(Settings(var_dir=tmp_path / "var"), s3=None)


@pytest.mark.parametrize(
    ("version", "key", "sha"),
    [
        ("../../x", "extractors/../../x.py", SHA),
        (GOOD, "extractors/../../etc/passwd", SHA),
        (GOOD, f"extractors/{GOOD}.py", "../" * 20),
        (GOOD + "\n", f"extractors/{GOOD}\n.py", SHA),
        ("v1-ABCDEF123456", "extractors/v1-ABCDEF123456.py", SHA),
    ],
)
def test_a_script_record_that_points_elsewhere_is_refused(
    tmp_path: Path, version: str, key: str, sha: str
) -> None:
    with pytest.raises(scripts.InvalidScriptRecord):
        scripts.fetch(_ctx(tmp_path), version, key, sha)
    assert not any(tmp_path.rglob("*.py"))  # nothing was written anywhere


def test_the_default_version_needs_no_object(tmp_path: Path) -> None:
    assert scripts.fetch(_ctx(tmp_path), "default-1", None, None) == DEFAULT_SCRIPT


def _confirmed(**changes: Any) -> DocsConfirmed:
    now = at_ms(0)
    record = DocsConfirmed(
        DOC, "t", "f", 1, None, "intellidox-2026", DOC, now, now, "6713e9ba55698a68"
    )
    return replace(record, **changes)


def test_a_good_object_reference_reads_the_pinned_version() -> None:
    ref = object_ref(Settings(), _confirmed())
    assert ref.get_params() == {
        "Bucket": "intellidox-2026",
        "Key": DOC,
        "VersionId": "6713e9ba55698a68",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"bucket": "intellidox-scripts"},
        {"bucket": "other-2026"},
        {"key": "../" + DOC},
        {"key": "01a2201b-0000-7a5e-bee7-78d5fb90a97a"},
        {"doc_id": "not-a-uuid"},
        {"version_id": "../x"},
        {"version_id": "v" * 500},
    ],
)
def test_an_object_reference_that_points_elsewhere_is_poison(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidObjectRef):
        object_ref(Settings(), _confirmed(**changes))
