"""The benches' speed probe: a real probe process, and the arithmetic on what it measured."""

from __future__ import annotations

import time

import pytest

from ops.bench.speed import REFERENCE_LOOP_S, SpeedProbe


def test_the_probe_times_its_loops_and_counts_its_own_cpu() -> None:
    with SpeedProbe() as probe:
        time.sleep(1.3)  # the loop runs at once, then every half second
    assert len(probe.loops) >= 2
    assert all(0 < loop < 1 for loop in probe.loops)
    assert probe.cpu_s >= sum(probe.loops)  # its loops, plus starting Python


def test_a_slower_minute_is_scaled_down_to_the_reference_speed() -> None:
    probe = SpeedProbe()
    probe.loops = [REFERENCE_LOOP_S * 1.5, REFERENCE_LOOP_S * 1.4, REFERENCE_LOOP_S * 9]
    assert probe.factor == pytest.approx(1.5)  # the median: one stalled loop is not the speed
    assert probe.at_reference(3.0) == pytest.approx(2.0)
    assert "1.50 of the reference's time, n=3" in probe.describe()


def test_without_a_loop_nothing_is_scaled() -> None:
    probe = SpeedProbe()
    assert probe.factor == 1.0 and probe.at_reference(3.0) == 3.0
    assert probe.describe() == "speed probe: no loop finished"
