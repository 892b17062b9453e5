"""Lag and dead-letter depth from the admin API, as the worker's principal under the ACLs."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ops.kafka import ADMIN, SCANNER, WORKER, as_role, consumer_config, producer_config
from ops.kafka_lag import LagReader
from ops.settings import Settings
from schemas import topics as t

pytestmark = pytest.mark.integration


def produce(settings: Settings, name: str, count: int) -> None:
    producer = Producer(producer_config(as_role(settings, ADMIN)))
    for i in range(count):
        producer.produce(name, f"v{i}".encode(), key=b"one-document")  # one partition
    assert producer.flush(20) == 0


def commit_after(settings: Settings, group: str, name: str, read: int, role: str = SCANNER) -> int:
    """Read ``read`` records as ``role`` in ``group`` and commit; returns their partition."""
    consumer = Consumer(consumer_config(as_role(settings, role), group, log_level=0))
    consumer.subscribe([name])
    seen = []
    try:
        while len(seen) < read:
            message = consumer.poll(10)
            assert message is not None, "no record in 10 s"
            if not message.error():
                seen.append(message)
        last = seen[-1]
        partition = last.partition() or 0
        consumer.commit(offsets=[TopicPartition(name, partition, (last.offset() or 0) + 1)])
        return partition
    finally:
        consumer.close()


def test_the_worker_sees_each_groups_lag_per_partition(
    settings: Settings, kafka_topics: str
) -> None:
    requests = kafka_topics + t.SCAN_REQUESTS
    produce(settings, requests, 5)
    slow, never = kafka_topics + "slow-scanner", kafka_topics + "new-scanner"
    partition = commit_after(settings, slow, requests, 2)
    reader = LagReader(as_role(settings, WORKER))
    lags = reader.lags({slow: [requests], never: [requests]})
    by_key = {(lag.group, lag.partition): lag for lag in lags}
    assert len(lags) == 2 * settings.kafka.partitions  # every partition of each group
    assert (by_key[(slow, partition)].committed, by_key[(slow, partition)].lag) == (2, 3)
    assert (by_key[(never, partition)].committed, by_key[(never, partition)].lag) == (None, 5)
    assert sum(lag.lag for lag in lags) == 3 + 5  # the other partitions are empty


def test_dead_letter_depth_and_what_a_replay_group_has_handled(
    settings: Settings, kafka_topics: str
) -> None:
    dlq = kafka_topics + t.dlq(t.SCAN_REQUESTS)
    empty = kafka_topics + t.dlq(t.DOCS_CONFIRMED)
    produce(settings, dlq, 3)
    handled = kafka_topics + "intellidox-dlq-replay"
    reader = LagReader(as_role(settings, WORKER))
    before = {d.topic: (d.messages, d.pending) for d in reader.depths([dlq, empty], handled)}
    assert before == {dlq: (3, 3), empty: (0, 0)}
    commit_after(settings, handled, dlq, 2, ADMIN)  # as if `dlq replay` had put back two
    after = {d.topic: (d.messages, d.pending) for d in reader.depths([dlq], handled)}
    assert after == {dlq: (3, 1)}


def test_a_principal_without_describe_on_a_group_gets_nothing_of_it(
    settings: Settings, kafka_topics: str
) -> None:
    requests = kafka_topics + t.SCAN_REQUESTS
    produce(settings, requests, 1)
    worker_group = kafka_topics + "intellidox-worker"  # scanners are denied the pipeline's groups
    as_scanner = LagReader(as_role(settings, SCANNER))
    assert as_scanner.lags({worker_group: [requests]}) == []
    as_worker = LagReader(as_role(settings, WORKER))
    assert sum(lag.lag for lag in as_worker.lags({worker_group: [requests]})) == 1
