"""The shared sender: acknowledgements reach the caller, and a slow one is logged (a verdict
held back in the producer looks, downstream, like an engine that never answered)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from ops.settings import Settings
from scanners import sender as sender_module
from scanners.sender import Record, Sender


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> tuple[Sender, list[Callable[..., None]], Clock]:
    clock = Clock()
    monkeypatch.setattr("scanners.sender.time.monotonic", clock.monotonic)
    sender = Sender(Settings())  # no broker is contacted until something is produced
    callbacks: list[Callable[..., None]] = []

    def produce(record: Record, delivered: Callable[[Any, Any], None]) -> None:
        callbacks.append(delivered)

    monkeypatch.setattr(sender, "_produce", produce)
    return sender, callbacks, clock


def test_a_slow_acknowledgement_is_logged_and_still_acked(
    captured: tuple[Sender, list[Callable[..., None]], Clock], caplog: pytest.LogCaptureFixture
) -> None:
    sender, callbacks, clock = captured
    acked: list[str] = []
    sender.send(Record("t.scan.verdicts", b"k", b"v"), lambda: acked.append("slow"))
    sender.send(Record("t.scan.verdicts", b"k", b"v"), lambda: acked.append("quick"))
    with caplog.at_level(logging.WARNING, logger="scanners.sender"):
        callbacks[1](None, None)
        clock.now += sender_module.SLOW_ACK_S + 1
        callbacks[0](None, None)
    assert acked == ["quick", "slow"]
    slow = [r.getMessage() for r in caplog.records]
    assert slow == ["kafka took 6.0s to acknowledge t.scan.verdicts"]
    sender.close(0)
