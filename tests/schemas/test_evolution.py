"""Schema evolution: each ``name.vN.avsc`` reads what ``name.v(N-1)`` wrote (BACKWARD).

Checked on the schemas' structure by Avro's resolution rules (the same check the registry's
``POST /compatibility`` answers with), so a new version that drops a default or changes a type
fails here, before any record is written with it.  tests/schemas/test_codec.py also decodes a
sample of every older version into the newest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway import avro_compat
from schemas import codec

SCHEMAS = Path(codec.__file__).parent
PAIRS = [
    (older, newer)
    for family in sorted({codec.family(s) for s in codec.SCHEMA_IDS.values()})
    for older, newer in zip(codec.versions(family), codec.versions(family)[1:], strict=False)
]


def _parsed(sid: int) -> avro_compat.Parsed:
    return avro_compat.parse(json.loads((SCHEMAS / f"{codec.SCHEMA_IDS[sid]}.avsc").read_text()))


def test_some_family_has_more_than_one_version() -> None:
    assert PAIRS  # otherwise the test below checks nothing


@pytest.mark.parametrize(("older", "newer"), PAIRS, ids=lambda sid: codec.SCHEMA_IDS[sid])
def test_each_version_reads_what_the_one_before_wrote(older: int, newer: int) -> None:
    assert avro_compat.problems(_parsed(newer), _parsed(older)) == []


def _with_field(raw: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "fields": [*raw["fields"], field]}


def test_a_new_field_without_a_default_would_be_refused() -> None:
    newest = json.loads((SCHEMAS / "scan_verdict.v2.avsc").read_text())
    bad = avro_compat.parse(_with_field(newest, {"name": "score", "type": "double"}))
    good = avro_compat.parse(
        _with_field(newest, {"name": "score", "type": ["null", "double"], "default": None})
    )
    assert avro_compat.problems(bad, _parsed(codec.schema_id("scan_verdict")))
    assert avro_compat.problems(good, _parsed(codec.schema_id("scan_verdict"))) == []
