"""The retro-scan's pure rules: the trigger, the rate, the selection, reuse, copies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.rescan.plan import (
    Current,
    IndexRow,
    Position,
    RescanJob,
    TokenBucket,
    after,
    choose_reusable,
    copy_to,
    hours,
    needs_rescan,
    settled,
    unseen,
    worth_a_look,
)

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
DOC = uuid.UUID("018f0000-0000-7000-8000-000000000001")


def _job(version: str | None = "v2", since: datetime = NOW - timedelta(days=7)) -> RescanJob:
    reason = "signatures" if version else "manual"
    return RescanJob(uuid.uuid4(), "", "hash-reputation", reason, version, since, NOW)


def _row(verdict: str = "clean", version: str = "v1", end_at: datetime = NOW) -> IndexRow:
    return IndexRow(end_at - timedelta(hours=1), DOC, "t", verdict, version)


# -- the trigger ------------------------------------------------------------------------------
def test_a_version_triggers_once_per_worker_however_many_heartbeats_repeat_it() -> None:
    known: set[tuple[str, str]] = set()
    found = []
    for beat in [{"clamav": "27500", "yara": "r1"}] * 3 + [{"clamav": "27501", "yara": "r1"}]:
        fresh = unseen(beat, known)
        known.update(fresh)  # what the watcher does once Postgres has recorded them
        found.append(fresh)
    assert found == [[("clamav", "27500"), ("yara", "r1")], [], [], [("clamav", "27501")]]


def test_alternating_hosts_in_a_rollout_do_not_trigger_again() -> None:
    known = {("clamav", "27500"), ("clamav", "27501")}
    for version in ("27500", "27501", "27500"):
        assert unseen({"clamav": version}, known) == []


def test_engines_without_signatures_and_failed_probes_never_trigger() -> None:
    assert unseen({"sim": "", "clamav": "unknown (ClamdError)"}, set()) == []


# -- the rate ---------------------------------------------------------------------------------
def test_the_bucket_holds_reservations_to_the_rate() -> None:
    bucket = TokenBucket(rate=5.0, burst=1.0)
    waits = [bucket.reserve(100.0) for _ in range(6)]
    assert waits[0] == 0.0
    assert waits[1:] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # Requests that waited out their reservations: over 10 s at most 5/s plus the burst.
    bucket = TokenBucket(rate=5.0, burst=1.0)
    now, sent = 0.0, 0
    while now < 10.0:
        now += bucket.reserve(now)
        sent += 1
    assert sent == 51


def test_a_bucket_saves_up_to_its_burst_only() -> None:
    bucket = TokenBucket(rate=1.0, burst=3.0)
    bucket.reserve(0.0)
    assert [bucket.reserve(1000.0) for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(1.0)]


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        TokenBucket(rate=0.0).reserve(0.0)


# -- selection --------------------------------------------------------------------------------
def test_hours_cover_the_window_from_its_first_hour() -> None:
    covered = hours(NOW - timedelta(hours=2, minutes=5), NOW)
    assert covered[0] == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert covered[-1] == datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert len(covered) == 3
    assert len(hours(NOW - timedelta(days=7), NOW)) == 7 * 24 + 1


def test_only_conclusive_verdicts_in_the_window_with_other_signatures_are_looked_at() -> None:
    job = _job("v2", since=NOW - timedelta(days=1))
    assert worth_a_look(_row("clean", "v1"), job)
    assert worth_a_look(_row("malicious", "v1"), job)  # a signature can be withdrawn too
    assert not worth_a_look(_row("clean", "v2"), job)  # made with the new signatures already
    for verdict in ("timeout", "error", "too_large", "unsupported"):
        assert not worth_a_look(_row(verdict, "v1"), job), verdict
    old = IndexRow(NOW - timedelta(days=2), DOC, "t", "clean", "v1")
    assert not worth_a_look(old, job)  # outside the window
    later = IndexRow(NOW + timedelta(seconds=1), DOC, "t", "clean", "v1")
    assert not worth_a_look(later, job)  # after the job opened
    assert worth_a_look(_row("clean", "v2"), _job(None))  # manual: whatever the signatures


def test_a_document_is_selected_by_its_current_verdict_only() -> None:
    job, row = _job("v2"), _row("clean", "v1")
    assert needs_rescan(row, Current("clean", "v1", row.end_at), job)
    assert not needs_rescan(row, None, job)  # no longer projected
    newer = Current("clean", "v2", row.end_at + timedelta(minutes=1))
    assert not needs_rescan(row, newer, job)  # a newer verdict stands: its own row decides
    assert not needs_rescan(row, Current("clean", "v2", row.end_at), job)
    assert not needs_rescan(row, Current("timeout", "", row.end_at), job)


def test_a_job_resumes_after_the_last_row_it_handled() -> None:
    hour = datetime(2026, 11, 28, 10, tzinfo=UTC)
    at = hour + timedelta(minutes=3)
    assert after(None, hour) is None
    assert after(Position(hour, at, DOC), hour) == (at, DOC)
    assert after(Position(hour, at, DOC), hour + timedelta(hours=1)) is None
    assert after(Position(hour), hour) is None


# -- copies to the same bytes -------------------------------------------------------------------
def test_a_changed_verdict_is_copied_only_over_older_different_verdicts_in_the_window() -> None:
    since, end = NOW - timedelta(days=7), NOW
    before = NOW - timedelta(hours=1)
    assert copy_to(Current("clean", "v1", before), "malicious", end, since)
    assert not copy_to(Current("malicious", "v2", before), "malicious", end, since)
    assert not copy_to(Current("clean", "v2", end + timedelta(seconds=1)), "malicious", end, since)
    assert not copy_to(
        Current("clean", "v1", since - timedelta(seconds=1)), "malicious", end, since
    )
    assert not copy_to(Current("timeout", "", before), "malicious", end, since)
    assert not copy_to(None, "malicious", end, since)


# -- reuse ------------------------------------------------------------------------------------
def _verdict(scanner: str, version: str, verdict: str = "clean", doc: str = "a") -> dict[str, Any]:
    return {"scanner": scanner, "signatures_version": version, "verdict": verdict, "doc": doc}


def test_reuse_prefers_a_verdict_made_with_the_current_signatures() -> None:
    newest = [_verdict("clamav", "27500", doc="new"), _verdict("yara", "r2", doc="new")]
    older = [_verdict("clamav", "27501", doc="old"), _verdict("yara", "r1", doc="old")]
    chosen = choose_reusable([newest, older], {"clamav": "27501", "yara": "r2"})
    assert [(row["scanner"], row["doc"], stale) for row, stale in chosen] == [
        ("clamav", "old", False),
        ("yara", "new", False),
    ]


def test_reuse_marks_an_older_verdict_stale_when_no_newer_one_exists_yet() -> None:
    chosen = choose_reusable([[_verdict("clamav", "27500")]], {"clamav": "27501"})
    assert [(row["scanner"], stale) for row, stale in chosen] == [("clamav", True)]
    assert not settled(chosen)


def test_reuse_keeps_what_does_not_depend_on_signatures_and_skips_inconclusive() -> None:
    rows = [
        _verdict("clamav", "old", "too_large"),
        _verdict("yara", "old", "timeout"),
        _verdict("pdf", "old", "error"),
        _verdict("sim", "", "clean"),
        _verdict("gone", "old", "malicious"),  # no heartbeat: nothing to compare with
    ]
    chosen = choose_reusable([rows], {"clamav": "new", "yara": "new", "pdf": "new", "sim": ""})
    assert [(row["scanner"], stale) for row, stale in chosen] == [
        ("clamav", False),
        ("gone", False),
        ("sim", False),
    ]
    assert settled(chosen)
