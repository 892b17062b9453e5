"""Reading topics to their end: the one helper of every read that stops there.

Such a read stops at each partition's end offset as it was when the read began (what is
written meanwhile is the next read's).  :class:`Ends` holds that place and says when the read
has reached it; :func:`read_to_end` is the confluent-kafka loop (replay, ``trace``, ``dlq``,
the extractor admin, ``scanner list``), and the worker's followers of compacted topics
(aiokafka) tell an :class:`Ends` from :func:`aio_ends` where they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from ops.backoff import Backoff, retrying_sync

Place = tuple[str, int]  # (topic, partition)
ELECTION = Backoff(attempts=None, base_s=0.2, cap_s=1.0)  # a topic just created has no leader yet


class Ends:
    """Where a read of some partitions stops, and whether it is there yet."""

    def __init__(self, ends: Mapping[Place, int], start: Mapping[Place, int] | None = None):
        self.ends = dict(ends)
        self.begin = {place: (start or {}).get(place, 0) for place in self.ends}
        self._open = {place for place, end in self.ends.items() if self.begin[place] < end}

    @property
    def reached(self) -> bool:
        return not self._open

    def wants(self, place: Place, offset: int) -> bool:
        """Whether the record at ``offset`` is this read's (not written after it began)."""
        return offset < self.ends.get(place, 0)

    def at(self, place: Place, position: int) -> None:
        """The consumer's next offset to read in ``place`` is ``position``."""
        if position >= self.ends.get(place, 0):
            self._open.discard(place)

    def read(self, place: Place, offset: int) -> None:
        """The record at ``offset`` was read."""
        self.at(place, offset + 1)


def ends_of(
    consumer: Consumer,
    names: Iterable[str],
    timeout_s: float,
    start: Mapping[Place, int] | None = None,
    choose: Callable[[list[int]], list[int]] | None = None,
) -> Ends:
    """The :class:`Ends` of every partition of ``names`` (those ``choose`` picks of a topic's
    partitions, when given), from its first record kept (or ``start``, when later); waits
    out a leader election for up to ``timeout_s``."""
    window = Backoff(ELECTION.attempts, ELECTION.base_s, ELECTION.cap_s, window_s=timeout_s)
    lows, highs = {}, {}
    for name in names:
        chosen = list(consumer.list_topics(name, timeout=timeout_s).topics[name].partitions)
        if choose is not None:
            chosen = choose(chosen)
        for p in chosen:
            low, high = retrying_sync(
                functools.partial(_watermarks, consumer, TopicPartition(name, p), timeout_s),
                [(KafkaException, window)],
            )
            lows[(name, p)], highs[(name, p)] = low, high
    later = start or {}
    return Ends(highs, {place: max(low, later.get(place, low)) for place, low in lows.items()})


def _watermarks(consumer: Consumer, part: TopicPartition, timeout_s: float) -> tuple[int, int]:
    low, high = consumer.get_watermark_offsets(part, timeout=timeout_s)
    return int(low), int(high)


def read_to_end(consumer: Consumer, ends: Ends, timeout_s: float) -> Iterator[Message]:
    """Assign ``consumer`` to the partitions of ``ends`` and yield their records up to the
    ends; TimeoutError when nothing comes for ``timeout_s`` before then."""
    consumer.assign([TopicPartition(t, p, ends.begin[(t, p)]) for t, p in ends.ends])
    while not ends.reached:
        message = consumer.poll(timeout_s)
        if message is None:
            names = sorted({name for name, _ in ends.ends})
            raise TimeoutError(f"reading {', '.join(names)} to its end stalled")
        if message.error():
            continue
        place, offset = (message.topic() or "", message.partition() or 0), message.offset() or 0
        if ends.wants(place, offset):
            yield message
        ends.read(place, offset)


async def aio_ends(consumer: Any, partitions: Sequence[Any]) -> Ends:
    """The :class:`Ends` of an aiokafka consumer's ``partitions`` as they are now."""
    offsets = await consumer.end_offsets(partitions)
    return Ends({(tp.topic, tp.partition): int(end) for tp, end in offsets.items()})
