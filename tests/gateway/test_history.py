"""Earlier verdicts and rescans as the API shows them (pure: rows in, views out)."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.history import earlier_by_scanner, replaced_something
from gateway.sse import Fact, Sequencer
from gateway.verdicts import verdict_view

T = datetime(2026, 11, 28, 12, 0)  # Cassandra hands timestamps back naive (UTC)


def _row(scanner: str, verdict: str, at: datetime, **extra: object) -> dict[str, object]:
    return {"scanner": scanner, "verdict": verdict, "end_at": at, "start_at": at, **extra}


def test_earlier_verdicts_are_older_than_the_current_one_newest_first() -> None:
    current = [
        _row("hash", "malicious", T, rescan_previous="clean"),
        _row("sim", "clean", T - timedelta(hours=3)),
    ]
    history = [
        _row("hash", "malicious", T, rescan_previous="clean"),
        _row("hash", "clean", T - timedelta(hours=2), signatures_version="1"),
        _row("hash", "timeout", T - timedelta(hours=3)),
        _row("sim", "clean", T - timedelta(hours=3)),
    ]
    earlier = earlier_by_scanner(current, history)
    assert list(earlier) == ["hash"]
    assert [(e["verdict"], e["rescan"]) for e in earlier["hash"]] == [
        ("clean", False),
        ("timeout", False),
    ]
    assert earlier["hash"][0]["end_at"] == "2026-11-28T10:00:00.000+00:00"


def test_only_a_replaced_verdict_makes_the_history_worth_reading() -> None:
    assert replaced_something(_row("hash", "malicious", T, rescan_previous="clean"))
    assert replaced_something(_row("sim", "clean", T, timeout_offset=4, kafka_offset=9))
    assert not replaced_something(_row("sim", "clean", T, kafka_offset=9))


def test_a_rescan_reads_the_same_from_the_topic_and_from_the_projection() -> None:
    event = {
        **_row("hash", "malicious", T),
        "rescan": {"previous_verdict": "clean", "reason": "signatures"},
        "signatures_stale": False,
    }
    projected = _row("hash", "malicious", T, rescan_previous="clean", signatures_stale=False)
    assert verdict_view(event) == verdict_view(projected)
    view = verdict_view(projected)
    assert (view["rescan"], view["previous_verdict"], view["signatures_stale"]) == (
        True,
        "clean",
        False,
    )
    assert verdict_view(_row("hash", "clean", T))["rescan"] is False


def test_a_stream_passes_a_rescans_verdict_after_the_scanners_first_one() -> None:
    sequencer = Sequencer()
    sequencer.accept(Fact("status", -1, {"status": "done"}))
    first = Fact("verdict", 3, {"scanner": "hash", "verdict": "clean"})
    again = Fact("verdict", 5, {"scanner": "hash", "verdict": "clean"})  # at-least-once twin
    rescan = Fact("verdict", 9, {"scanner": "hash", "verdict": "malicious", "rescan": {"x": 1}})
    assert sequencer.accept(first) == [first]
    assert sequencer.accept(again) == []
    assert sequencer.accept(rescan) == [rescan]
    assert sequencer.verdicts["hash"] == "malicious"
