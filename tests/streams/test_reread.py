"""Which verdict partitions the tracker reads again, and how often (pure logic)."""

from __future__ import annotations

from streams.reread import AGAIN_AFTER_MS, Rereads


def test_a_partition_is_read_again_at_most_once_per_interval() -> None:
    rereads = Rereads()
    assert rereads.due({1: 500, 2: 700}, now_ms=10_000) == {1: 500, 2: 700}
    assert rereads.due({1: 400, 3: 900}, now_ms=10_001) == {3: 900}  # 1 was just read
    later = 10_000 + AGAIN_AFTER_MS
    assert rereads.due({1: 400, 2: 700}, now_ms=later) == {1: 400, 2: 700}
