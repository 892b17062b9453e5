"""The completion tracker's pure logic: statuses, and deadlines that measure the engine."""

import dataclasses
from datetime import UTC, datetime

from schemas.documents import DocsConfirmed, DocsMetadata
from schemas.record import at_ms
from schemas.records import ScanVerdict
from schemas.scans import ExpectedScanner, ScanRequest
from streams import progress
from streams.progress import DeadlineClock, Progress

DOC = "01a21e2b-1134-7384-8db8-e24c5ec7fb12"
NOBODY: frozenset[str] = frozenset()
T0 = at_ms(0)


def _request(scanners: dict[str, int], reused: tuple[str, ...] = (), at: int = 0) -> ScanRequest:
    """A scan request at ``at`` ms; ``scanners`` maps names to their deadline in ms."""
    return ScanRequest(
        DOC, "t", "f", 1, None, None, "a" * 64, "http://s3/x", T0,
        tuple(ExpectedScanner(n, at_ms(at + d)) for n, d in scanners.items()),
        at_ms(at), reused=reused,
    )  # fmt: skip


def _verdict(scanner: str, verdict: str = "clean") -> ScanVerdict:
    return ScanVerdict(DOC, "t", scanner, "", verdict, "", "", "", T0, T0)


def _metadata(failed: bool, error: str | None) -> DocsMetadata:
    return DocsMetadata(DOC, "t", None, 1, None, None, {}, None, 0, error, failed, T0)


def _pending(scanners: dict[str, int]) -> Progress:
    state, _ = progress.on_scan_request(None, _request(scanners), 1)
    return state


def test_statuses_move_forward_once_each() -> None:
    # 'uploaded' is announced by the gateway itself; the tracker only takes note.
    state, out = progress.on_confirmed(
        None, DocsConfirmed(DOC, "t", "f", 1, None, "b", DOC, T0, T0), 1
    )
    assert out == [] and state.status == "uploaded"
    state, out = progress.on_scan_request(state, _request({"a": 100, "b": 100}), 3)
    assert [(e.status, e.expected) for e in out] == [("in_progress", 2)]
    state, out = progress.on_verdict(state, _verdict("a"), 4)
    assert out == []
    state, out = progress.on_verdict(state, _verdict("b"), 5)
    assert [(e.status, e.expected) for e in out] == [("done", 2)]
    state, out = progress.on_verdict(state, _verdict("b"), 6)  # redelivered
    assert out == [] and state.got == ["a", "b"]


def test_verdicts_before_the_request_still_count() -> None:
    state, _ = progress.on_verdict(None, _verdict("a"), 1)
    state, out = progress.on_scan_request(state, _request({"a": 100}), 2)
    assert [e.status for e in out] == ["in_progress", "done"]


def test_a_request_keeps_each_deadline_as_a_duration() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)
    request = _request({"a": 30_000, "b": 2_000}, reused=("c",), at=ms)
    state, _ = progress.on_scan_request(None, request, 5)
    assert state.expected == {"a": 30_000, "b": 2_000, "c": 0}
    assert state.requested_ms == ms


def test_reused_verdicts_are_expected_without_a_deadline() -> None:
    state, _ = progress.on_scan_request(None, _request({}, reused=("a", "b")), 1)
    assert not progress.charge(state, NOBODY, 10**9) and progress.overdue(state) == []
    state, _ = progress.on_verdict(state, _verdict("a"), 2)
    state, out = progress.on_verdict(state, _verdict("b"), 3)
    assert [e.status for e in out] == ["done"]


def test_scanners_answered_unsupported_at_fan_out_are_expected_without_a_deadline() -> None:
    request = dataclasses.replace(_request({"a": 100}), unsupported=("pdf-active",))
    state, _ = progress.on_scan_request(None, request, 1)
    assert state.expected == {"a": 100, "pdf-active": 0}
    assert progress.waiting(state) == ["a"]  # never timed out: its verdict is on its way
    state, out = progress.on_verdict(state, _verdict("pdf-active", "unsupported"), 2)
    assert out == []
    state, out = progress.on_verdict(state, _verdict("a"), 3)
    assert [(e.status, e.expected) for e in out] == [("done", 2)]


def test_no_scanner_at_all_is_done_with_a_reason() -> None:
    _, out = progress.on_scan_request(None, _request({}), 1)
    assert out[-1].status == "done" and out[-1].reason == "no scanner was registered"


def test_an_unreadable_object_fails_the_document() -> None:
    _, out = progress.on_metadata(None, _metadata(True, "gone"), 1)
    assert [(e.status, e.reason) for e in out] == [("failed", "gone")]


def test_states_that_nothing_will_finish_are_forgotten() -> None:
    late, _ = progress.on_verdict(None, _verdict("a"), 1_000)  # after the document was forgotten
    assert not progress.forgettable(late, 2_000, 600_000)
    assert progress.forgettable(late, 1_000 + 3 * 600_000 + 1, 600_000)
    done, _ = progress.on_scan_request(None, _request({}), 1_000)
    assert progress.forgettable(done, 1_000 + 600_001, 600_000)


def test_the_state_survives_the_table_and_old_states_are_read() -> None:
    state = _pending({"a": 100})
    progress.charge(state, NOBODY, 40)
    assert Progress.from_json(state.to_json()) == state
    old = {
        "created_ms": 1_000,
        "tenant": "t",
        "status": "in_progress",
        "expected": {"a": 31_000, "r": 0},  # version 1: absolute deadlines
        "got": [],
        "timed_out": [],
        "finished_ms": None,
    }
    assert Progress.from_json(old).expected == {"a": 30_000, "r": 0}


def test_a_copy_from_the_table_leaves_the_table_alone() -> None:
    raw = _pending({"a": 100}).to_json()
    state = Progress.from_json(raw)
    progress.charge(state, NOBODY, 40)
    progress.on_verdict(state, _verdict("a"), 2)
    assert raw["down_ms"] == {} and raw["got"] == []


# -- deadlines: only a gone scanner group's time counts ---------------------------------------
def test_a_live_scanner_is_never_timed_out_by_the_tracker() -> None:
    state = _pending({"a": 100})
    for _ in range(100):  # however long it takes: the runner answers for a live engine
        assert not progress.charge(state, frozenset({"a"}), 1_000)
    assert progress.overdue(state) == []


def test_a_gone_scanner_times_out_after_its_deadline_of_no_live_member() -> None:
    state = _pending({"a": 2_500, "b": 100_000})
    alive = frozenset({"b"})
    for _ in range(2):
        assert progress.charge(state, alive, 1_000)
        assert progress.overdue(state) == []
    progress.charge(state, alive, 1_000)
    assert state.down_ms == {"a": 3_000} and progress.overdue(state) == ["a"]
    state.timed_out.append("a")  # what the tracker does once the timeout is sent
    assert progress.overdue(state) == [] and not progress.charge(state, alive, 1_000)


def test_a_live_scanner_silent_long_past_twice_its_deadline_is_stalled() -> None:
    state = _pending({"a": 3_000, "b": 3_000, "gone": 3_000})  # requested at 0
    alive = frozenset({"a", "b"})
    assert progress.stalled(state, alive, 36_000, floor_ms=30_000) == []  # 2 x 3 s + 30 s
    assert progress.stalled(state, alive, 36_001, floor_ms=30_000) == ["a", "b"]
    state, _ = progress.on_verdict(state, _verdict("a"), 36_001)
    assert progress.stalled(state, alive, 36_001, floor_ms=30_000) == ["b"]  # a answered
    state.timed_out.append("b")  # a timeout counts as an answer too
    assert progress.stalled(state, alive, 99_000, floor_ms=30_000) == []


def test_a_document_without_its_request_is_never_stalled() -> None:
    state, _ = progress.on_verdict(None, _verdict("a"), 0)
    assert progress.stalled(state, frozenset({"a"}), 10**9, floor_ms=0) == []


def test_time_with_a_live_member_does_not_count_and_outages_add_up() -> None:
    state = _pending({"a": 2_500})
    progress.charge(state, NOBODY, 2_000)  # gone 2 s
    progress.charge(state, frozenset({"a"}), 60_000)  # back for a minute
    assert progress.overdue(state) == []
    progress.charge(state, NOBODY, 1_000)  # gone again: 3 s in all
    assert progress.overdue(state) == ["a"]


def test_nothing_is_charged_once_the_scanner_answered_or_the_document_is_done() -> None:
    state = _pending({"a": 100, "b": 100})
    state, _ = progress.on_verdict(state, _verdict("a"), 2)
    progress.charge(state, NOBODY, 1_000)
    assert state.down_ms == {"b": 1_000}
    state, _ = progress.on_verdict(state, _verdict("b"), 3)
    assert state.status == "done" and not progress.charge(state, NOBODY, 1_000)


def test_a_real_verdict_after_our_timeout_replaces_it_and_the_document_stays_done() -> None:
    state = _pending({"a": 100, "b": 100})
    state, _ = progress.on_verdict(state, _verdict("b"), 2)
    progress.charge(state, frozenset({"b"}), 1_000)
    state.timed_out.append("a")
    state, out = progress.on_verdict(state, _verdict("a", "timeout"), 3)  # ours, come back
    assert [e.status for e in out] == ["done"] and state.late == []
    state, out = progress.on_verdict(state, _verdict("a", "malicious"), 4)  # the engine, late
    assert out == [] and state.status == "done" and state.late == ["a"]
    state, out = progress.on_verdict(state, _verdict("a", "malicious"), 5)  # redelivered
    assert out == [] and state.late == ["a"]


def test_the_clock_counts_only_time_it_ran_with_a_fresh_view() -> None:
    clock = DeadlineClock(max_step_ms=2_000)
    assert clock.step(10_000, fresh=True) == 0  # a (re)started tracker counts nothing yet
    assert clock.step(11_000, fresh=True) == 1_000
    assert clock.step(12_000, fresh=False) == 0  # Kafka away: registry view stale
    assert clock.step(40_000, fresh=False) == 0
    assert clock.step(41_000, fresh=True) == 0  # fresh again: from here on
    assert clock.step(42_000, fresh=True) == 1_000
    assert clock.step(70_000, fresh=True) == 2_000  # a stalled loop counts one step at most


def test_a_restarted_tracker_does_not_charge_the_time_it_was_dead() -> None:
    state = _pending({"a": 3_000})
    first = DeadlineClock(max_step_ms=2_000)
    for now in (1_000, 2_000, 3_000):
        progress.charge(state, NOBODY, first.step(now, fresh=True))
    assert state.down_ms == {"a": 2_000}
    restarted = DeadlineClock(max_step_ms=2_000)  # the worker was SIGKILLed for a minute
    progress.charge(state, NOBODY, restarted.step(63_000, fresh=True))
    assert progress.overdue(state) == []
    progress.charge(state, NOBODY, restarted.step(64_000, fresh=True))
    assert progress.overdue(state) == []  # exactly 3 s: not longer than the deadline
    progress.charge(state, NOBODY, restarted.step(65_000, fresh=True))
    assert progress.overdue(state) == ["a"]


def test_json_round_trip_copies_every_container() -> None:
    """The table holds the JSON dict: a parsed state changed in place must not change it."""
    state = progress.Progress(
        tenant="t", created_ms=1, status="in_progress", expected={"a": 5}, got=["a"]
    )
    raw = state.to_json()
    parsed = progress.Progress.from_json(raw)
    assert parsed == state
    parsed.got.append("b")
    parsed.expected["b"] = 1  # type: ignore[index]
    parsed.down_ms["a"] = 7
    assert raw["got"] == ["a"] and raw["expected"] == {"a": 5} and raw["down_ms"] == {}
    state.got.append("c")
    assert raw["got"] == ["a"]
