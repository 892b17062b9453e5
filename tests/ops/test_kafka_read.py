"""Reading topics to their end (ops/kafka_read.py), without Kafka: a fake consumer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaException

from ops import kafka_read
from ops.backoff import Backoff
from ops.kafka_read import Ends, aio_ends, ends_of, read_to_end


def test_a_read_ends_when_every_partition_is_at_its_end_not_the_first() -> None:
    ends = Ends({("t", 0): 2, ("t", 1): 1, ("t", 2): 0})
    assert not ends.reached
    ends.read(("t", 0), 1)
    assert not ends.reached  # partition 1 still has a record to read
    ends.at(("t", 1), 1)
    assert ends.reached


def test_records_written_after_the_read_began_are_not_its_own() -> None:
    ends = Ends({("t", 0): 5}, start={("t", 0): 3})
    assert ends.begin == {("t", 0): 3}
    assert ends.wants(("t", 0), 4) and not ends.wants(("t", 0), 5)
    assert Ends({("t", 0): 5}, start={("t", 0): 5}).reached  # read before: nothing to do


@dataclass
class Record:
    place: tuple[str, int]
    at: int

    def topic(self) -> str:
        return self.place[0]

    def partition(self) -> int:
        return self.place[1]

    def offset(self) -> int:
        return self.at

    def error(self) -> None:
        return None


class FakeConsumer:
    """A topic ``t`` whose partition p holds offsets low..high-1; records are polled in
    offset order, a partition after the other, with ``more`` written since the read began."""

    def __init__(self, marks: dict[int, tuple[int, int]], elections: int = 0) -> None:
        self.marks, self.elections = marks, elections
        self.more = 3  # records written after the read began
        self.queue: list[Record] = []
        self.assigned: list[tuple[str, int, int]] = []

    def list_topics(self, name: str, timeout: float) -> Any:
        partitions = dict.fromkeys(self.marks)
        return type("Meta", (), {"topics": {name: type("T", (), {"partitions": partitions})}})

    def get_watermark_offsets(self, part: Any, timeout: float) -> tuple[int, int]:
        if self.elections:
            self.elections -= 1
            raise KafkaException("leader not available")
        return self.marks[part.partition]

    def assign(self, parts: list[Any]) -> None:
        self.assigned = [(p.topic, p.partition, p.offset) for p in parts]
        for topic, partition, offset in self.assigned:
            high = self.marks[partition][1] + self.more
            self.queue += [Record((topic, partition), o) for o in range(offset, high)]

    def poll(self, timeout: float) -> Record | None:
        return self.queue.pop(0) if self.queue else None


def test_read_to_end_reads_from_the_first_kept_record_to_the_end_it_had(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka_read, "ELECTION", Backoff(attempts=None, base_s=0.001, cap_s=0.01))
    consumer = FakeConsumer({0: (2, 5), 1: (0, 0), 2: (0, 1)}, elections=2)
    ends = ends_of(consumer, ["t"], timeout_s=5)  # type: ignore[arg-type]
    read = [(r.partition(), r.offset()) for r in read_to_end(consumer, ends, 5)]  # type: ignore[arg-type]
    assert ("t", 0, 2) in consumer.assigned  # compacted away before offset 2
    assert sorted(read) == [(0, 2), (0, 3), (0, 4), (2, 0)]


def test_a_read_that_stalls_before_its_end_is_an_error() -> None:
    consumer = FakeConsumer({0: (0, 3)})
    ends = ends_of(consumer, ["t"], timeout_s=5)  # type: ignore[arg-type]
    consumer.marks[0], consumer.more = (0, 1), 0  # fewer arrive than the end promised
    with pytest.raises(TimeoutError, match="reading t to its end stalled"):
        list(read_to_end(consumer, ends, 0.01))  # type: ignore[arg-type]


async def test_aio_ends_are_the_consumers_end_offsets() -> None:
    @dataclass(frozen=True)
    class TP:
        topic: str
        partition: int

    class Aio:
        async def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
            return {tp: 7 for tp in partitions}

    ends = await aio_ends(Aio(), [TP("r", 0), TP("r", 1)])
    assert ends.ends == {("r", 0): 7, ("r", 1): 7} and not ends.reached
