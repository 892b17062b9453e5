"""How the verdict sink groups its rows into batches (pure logic, no Cassandra)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas.records import ScanVerdict
from streams.sinks.cassandra import (
    BATCH_BYTES,
    INDEX_BATCH_ROWS,
    document_rounds,
    index_chunks,
    insert_query,
    row,
    verdict_of,
)
from tests.schemas.samples import every_field_set

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)


def _verdict(doc: str, scanner: str, verdict: str = "clean", minutes: int = 0) -> ScanVerdict:
    return ScanVerdict.from_record({
        "doc_id": doc, "tenant": "t", "scanner": scanner, "vendor": "", "verdict": verdict,
        "result": "", "engine_version": "", "signatures_version": "1", "start_at": NOW,
        "end_at": NOW + timedelta(minutes=minutes), "reused_from": None,
    })  # fmt: skip


DOC_A = "01a22200-0000-7000-8000-000000000001"
DOC_B = "01a22200-0000-7000-8000-000000000002"


def _bytes(chunk: list[tuple[str, tuple[object, ...]]]) -> int:
    """What Cassandra would count, from above: text as UTF-8, 16 bytes for anything else."""
    return sum(len(v.encode()) if isinstance(v, str) else 16 for _, values in chunk for v in values)


def test_a_documents_twenty_verdicts_go_in_one_request() -> None:
    # Each round of requests waits for the commit log: one round a batch, not three.
    verdicts = [(_verdict(DOC_A, f"s{i:02d}"), 100 - i) for i in range(20)]
    rounds = document_rounds([*verdicts, (_verdict(DOC_B, "s00"), 5)], "insert", "history")
    assert [len(wave) for wave in rounds] == [2]
    assert sorted(len(chunk) for chunk in rounds[0]) == [2, 40]


@pytest.mark.parametrize("char", ["x", "\u4e2d", "\U0001f600"])  # 1, 3 and 4 bytes in UTF-8
def test_long_results_split_a_document_into_rounds_in_offset_order(char: str) -> None:
    long = char * 2000  # the runner's cap on a result; a row and its history row hold it
    verdicts = [(replace(_verdict(DOC_A, f"s{i:02d}"), result=long), 100 - i) for i in range(20)]
    rounds = document_rounds([*verdicts, (_verdict(DOC_B, "s00"), 5)], "insert", "history")
    assert len(rounds) > 1 and len(rounds[0]) == 2
    chunks = [chunk for wave in rounds for chunk in wave]
    assert all(_bytes(chunk) <= BATCH_BYTES for chunk in chunks)
    a_rows = [r for chunk in chunks for r in chunk if r[1][0].hex[-1] == "1"]
    assert [statement for statement, _ in a_rows] == ["insert", "history"] * 20  # pairs whole
    offsets = [values[13] for statement, values in a_rows if statement == "insert"]
    assert offsets == sorted(offsets) and len(offsets) == 20


def test_index_rows_are_listed_by_scanner_and_hour_and_timeouts_are_not_listed() -> None:
    batch = [
        (_verdict(DOC_A, "clamav"), 1),
        (_verdict(DOC_B, "clamav"), 2),
        (_verdict(DOC_A, "yara", minutes=45), 3),  # the next hour
        (_verdict(DOC_B, "yara", verdict="timeout"), 4),
    ]
    chunks = index_chunks(batch, "index", "scope")
    partitions = [(values[1], values[2].hour) for chunk in chunks for _, values in chunk]
    assert partitions == [("clamav", 12), ("clamav", 12), ("yara", 13)]


def test_index_rows_share_batches_across_partitions_up_to_a_limit() -> None:
    # One request for many partitions: 40 documents of 20 scanners are 25 requests, not 800.
    docs = [str(uuid.UUID(int=i)) for i in range(40)]
    batch = [(_verdict(doc, f"scanner{k:02d}"), i) for i, doc in enumerate(docs) for k in range(20)]
    chunks = index_chunks(batch, "index", "scope")
    assert [len(chunk) for chunk in chunks] == [INDEX_BATCH_ROWS] * 25
    scanners = [values[1] for chunk in chunks for _, values in chunk]
    assert scanners == sorted(scanners)  # a partition's rows side by side


def _every_field_set() -> ScanVerdict:
    """Every field set (a field added later too), no rescan: a row keeps it only in part."""
    return every_field_set(ScanVerdict, doc_id=DOC_A, reused_from=DOC_B, rescan=None)


def test_a_projected_row_reads_back_as_every_field_of_its_verdict() -> None:
    # What reuse copies: a field the sink does not write, or does not read back, fails here.
    verdict = _every_field_set()
    columns = re.sub(r"\s+", " ", insert_query("ks")).split("(", 1)[1].split(")")[0].split(", ")
    projected = dict(zip(columns, row(verdict, 7), strict=False))  # row() ends with the stamp
    assert verdict.rescan is None and verdict.signatures_stale is True
    assert verdict_of(projected) == verdict
