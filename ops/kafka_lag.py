"""Consumer lag and topic depth from Kafka's admin API: committed offsets vs end offsets.

One process can read every group's lag this way, without joining any group: the worker does
it for its own group and every scanner group (streams/monitor.py).  Its principal needs
DESCRIBE on those groups and on the topics (ops/bootstrap/acls.py grants it); a READ or WRITE
grant on a topic implies DESCRIBE.  A partition a group never committed counts from the log
start, as a consumer with ``auto.offset.reset=earliest`` would begin there.

Per look: one metadata request, two ListOffsets (earliest, latest) and one OffsetFetch per
group, all in flight together.  Synchronous (librdkafka futures): call it from a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from ops.kafka import client_config
from ops.settings import Settings

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    end: int
    lag: int


@dataclass(frozen=True)
class TopicDepth:
    topic: str
    messages: int  # held now: end minus log start, over every partition
    pending: int  # past the offsets a bookkeeping group committed (all held: none committed)


@dataclass(frozen=True)
class Offsets:
    earliest: dict[tuple[str, int], int]
    latest: dict[tuple[str, int], int]


class LagReader:
    """An admin client of ``settings.kafka.role``'s principal, reused across looks."""

    def __init__(self, settings: Settings) -> None:
        self.admin = AdminClient(client_config(settings, log_level=0))

    def partitions(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Partition ids of each topic that exists (and that the principal may see)."""
        wanted = set(topics)
        found = self.admin.list_topics(timeout=TIMEOUT_S).topics
        return {
            name: sorted(meta.partitions)
            for name, meta in found.items()
            if name in wanted and meta.error is None
        }

    def offsets(self, partitions: Mapping[str, list[int]]) -> Offsets:
        tps = [TopicPartition(name, p) for name, ids in partitions.items() for p in ids]
        if not tps:
            return Offsets({}, {})
        first, last = OffsetSpec.earliest(), OffsetSpec.latest()  # type: ignore[no-untyped-call]
        earliest = self.admin.list_offsets({tp: first for tp in tps})
        latest = self.admin.list_offsets({tp: last for tp in tps})
        return Offsets(_resolved(earliest), _resolved(latest))

    def committed(
        self, groups: Mapping[str, list[str]], partitions: Mapping[str, list[int]]
    ) -> dict[str, dict[tuple[str, int], int | None]]:
        """Each group's committed offset on every partition of its topics (None: none).  A
        group the broker will not describe to us is left out (and logged), not the rest."""
        futures: dict[str, Future[Any]] = {}
        for group, names in groups.items():
            tps = [TopicPartition(n, p) for n in names for p in partitions.get(n, [])]
            if tps:
                request = [ConsumerGroupTopicPartitions(group, tps)]
                futures[group] = self.admin.list_consumer_group_offsets(
                    request, request_timeout=TIMEOUT_S
                )[group]
        found = {}
        for group, future in futures.items():
            try:
                found[group] = _committed(future.result(TIMEOUT_S))
            except KafkaException as exc:
                log.warning("cannot read the offsets of group %s: %s", group, exc)
        return found

    def lags(self, groups: Mapping[str, list[str]]) -> list[PartitionLag]:
        """Lag of every ``group`` (group id -> the topics it reads) on each partition."""
        partitions = self.partitions(n for names in groups.values() for n in names)
        offsets = self.offsets(partitions)
        found = []
        for group, committed in self.committed(groups, partitions).items():
            for (name, p), offset in sorted(committed.items()):
                end = offsets.latest[(name, p)]
                start = offset if offset is not None else offsets.earliest[(name, p)]
                found.append(PartitionLag(group, name, p, offset, end, max(0, end - start)))
        return found

    def depths(self, topics: Iterable[str], handled_by: str | None = None) -> list[TopicDepth]:
        """Messages each topic holds, and those past what group ``handled_by`` committed."""
        partitions = self.partitions(topics)
        offsets = self.offsets(partitions)
        handled: dict[tuple[str, int], int | None] = {}
        if handled_by is not None:
            groups = {handled_by: sorted(partitions)}
            handled = self.committed(groups, partitions).get(handled_by, {})
        found = []
        for name, ids in sorted(partitions.items()):
            ends = [(offsets.earliest[(name, p)], offsets.latest[(name, p)]) for p in ids]
            done = [handled.get((name, p)) for p in ids]
            held = sum(end - start for start, end in ends)
            pending = sum(
                end - max(start, mark or 0) for (start, end), mark in zip(ends, done, strict=True)
            )
            found.append(TopicDepth(name, held, pending))
        return found


def _resolved(futures: Mapping[TopicPartition, Future[Any]]) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): int(f.result(TIMEOUT_S).offset) for tp, f in futures.items()}


def _committed(result: ConsumerGroupTopicPartitions) -> dict[tuple[str, int], int | None]:
    found: dict[tuple[str, int], int | None] = {}
    for tp in result.topic_partitions or []:
        if tp.error is not None:
            raise KafkaException(tp.error)
        found[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
    return found
