"""The API's view of a verdict shows every field of the record, the same from a projected row
(scan-results) as from a live event (the event stream)."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from cassandra.query import UNSET_VALUE

from gateway.verdicts import verdict_view
from schemas.records import RescanOf, ScanVerdict
from streams.sinks.cassandra import insert_query, row
from tests.schemas.samples import every_field_set

DOC, FIRST = "01a22200-0000-7000-8000-000000000001", "01a22200-0000-7000-8000-000000000002"
NOT_SHOWN = {"doc_id", "tenant"}  # the document's own: its URL says them
SHOWN_AS = {"reused_from": "reused"}  # whose the verdict was is not shown, only that it was


def _every_field_set() -> ScanVerdict:
    rescan = RescanOf("clean", "1", "manual", "j")
    return every_field_set(ScanVerdict, doc_id=DOC, reused_from=FIRST, rescan=rescan)


def _projected(verdict: ScanVerdict) -> dict[str, Any]:
    """The ``verdicts`` row the sink writes for it, as Cassandra reads it back."""
    columns = re.sub(r"\s+", " ", insert_query("ks")).split("(", 1)[1].split(")")[0].split(", ")
    values = row(verdict, 7)  # ends with the write timestamp, which is no column
    return {c: None if v is UNSET_VALUE else v for c, v in zip(columns, values, strict=False)}


def test_every_field_of_a_verdict_is_in_its_view() -> None:
    # A field added to verdicts fails here until the API view shows it.
    view = verdict_view(_every_field_set().to_record())
    for f in fields(ScanVerdict):
        if f.name not in NOT_SHOWN:
            assert SHOWN_AS.get(f.name, f.name) in view, f"the API view does not show {f.name}"


def test_a_verdict_reads_the_same_live_and_from_the_projection() -> None:
    verdict = _every_field_set()
    live, projected = verdict_view(verdict.to_record()), verdict_view(_projected(verdict))
    assert live == projected
    assert (live["rescan"], live["previous_verdict"], live["reused"]) == (True, "clean", True)
