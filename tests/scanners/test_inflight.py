"""Requests in flight and ordered commits, without Kafka."""

from __future__ import annotations

import threading

from scanners.inflight import InFlight, PartitionWindow

P0, P1 = ("scan.requests", 0), ("scan.requests", 1)


def test_the_commit_point_never_passes_an_unfinished_offset() -> None:
    window = PartitionWindow()
    for offset in range(10, 15):
        window.take(offset)
    assert window.next_commit == 10
    window.finish(12)
    window.finish(11)
    assert window.next_commit == 10  # 10 is still open
    window.finish(10)
    assert window.next_commit == 13
    window.finish(14)
    assert window.next_commit == 13
    window.finish(13)
    assert window.next_commit == 15 and not window.open


def test_a_window_that_caught_up_commits_up_to_the_next_offset_taken() -> None:
    window = PartitionWindow()
    window.take(3)
    window.finish(3)
    window.take(4)
    assert window.next_commit == 4
    window.finish(4)
    window.finish(4)  # twice is harmless
    assert window.next_commit == 5


def test_due_hands_out_each_commit_point_once_per_partition() -> None:
    flight = InFlight(limit=8)
    a, b = flight.take(P0, 0), flight.take(P0, 1)
    c = flight.take(P1, 7)
    assert flight.due() == {P0: 0, P1: 7}
    assert flight.due() == {}
    flight.finish(b)
    assert flight.due() == {}  # offset 0 is still open
    flight.finish(a)
    flight.finish(c)
    assert flight.due() == {P0: 2, P1: 8}
    assert flight.due([P0]) == {} and len(flight) == 0


def test_a_lost_partition_commits_nothing_more_but_its_requests_still_count() -> None:
    flight = InFlight(limit=2)
    ticket = flight.take(P0, 5)
    flight.take(P1, 0)
    assert flight.full
    flight.forget([P0])
    flight.finish(ticket)  # the scan finished after the partition went to a peer
    assert P0 not in flight.due() and not flight.full and len(flight) == 1


def test_wait_empty_returns_when_the_last_request_finishes() -> None:
    flight = InFlight(limit=4)
    ticket = flight.take(P0, 0)
    assert not flight.wait_empty(0.05)
    threading.Timer(0.1, flight.finish, (ticket,)).start()
    assert flight.wait_empty(5)


def test_an_abandoned_request_is_never_passed_by_a_commit() -> None:
    """Let go unscanned (the consumer is stopping): it no longer counts, and stays open."""
    flight = InFlight(limit=4)
    first, second = flight.take(P0, 0), flight.take(P0, 1)
    flight.abandon(first)
    flight.finish(second)
    assert len(flight) == 0 and flight.due() == {P0: 0}


def test_a_partition_taken_away_and_back_is_a_new_window() -> None:
    flight = InFlight(limit=4)
    old = flight.take(P0, 0)
    flight.forget([P0])
    new = flight.take(P0, 0)
    assert not flight.owns(old) and flight.owns(new)


def test_pausing_at_full_resumes_only_at_half() -> None:
    flight = InFlight(limit=4)
    tickets = [flight.take(P0, offset) for offset in range(4)]
    assert flight.full and not flight.low
    flight.finish(tickets[0])
    assert not flight.full and not flight.low
    flight.finish(tickets[1])
    assert flight.low


def test_a_failed_commit_is_handed_out_again() -> None:
    flight = InFlight(limit=4)
    flight.finish(flight.take(P0, 0))
    assert flight.due() == {P0: 1}
    flight.retry(P0, 1)
    assert flight.due() == {P0: 1}
    flight.retry(P0, 0)  # an older commit failing changes nothing
    assert flight.due() == {}


def test_wait_low_returns_when_half_is_done() -> None:
    flight = InFlight(limit=4)
    tickets = [flight.take(P0, offset) for offset in range(4)]
    assert not flight.wait_low(0.05)
    for ticket in tickets[:2]:
        threading.Timer(0.1, flight.finish, (ticket,)).start()
    assert flight.wait_low(5)
