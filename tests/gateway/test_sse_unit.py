"""Pure logic of the event stream and the results view, without a server."""

from gateway.sse import Cursor, Fact
from gateway.streaming import visible_status


def test_cursor_round_trips_and_bad_ids_start_over() -> None:
    assert str(Cursor.parse("3.10.42")) == "3.10.42"
    assert Cursor.parse("garbage") == Cursor() == Cursor.parse(None)


def test_facts_only_advance_past_what_the_cursor_covers() -> None:
    cursor = Cursor(2, 10, 42)
    assert Fact("status", -1, {"status": "uploaded"}).advances(cursor) is None
    assert Fact("status", -1, {"status": "done"}).advances(cursor) == Cursor(3, 10, 42)
    assert Fact("meta", 10, {}).advances(cursor) is None
    assert Fact("verdict", 43, {}).advances(cursor) == Cursor(2, 10, 43)


def test_done_shows_only_when_every_expected_verdict_is_readable() -> None:
    assert visible_status("done", 3, 2) == "in_progress"
    assert visible_status("done", 3, 3) == "done"
    assert visible_status("failed", None, 0) == "failed"
