"""``intellidox scanner list``: the registry with each scanner's last heartbeat and lag."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from ops.kafka import consumer_config, topic
from ops.kafka_read import ends_of, read_to_end
from ops.settings import Settings
from schemas import topics
from schemas.records import ScannerHeartbeat


def read_registry(settings: Settings, timeout_s: float = 5.0) -> dict[str, ScannerHeartbeat]:
    """Each scanner's latest heartbeat, read to the end the registry had (as far as came in
    ``timeout_s``)."""
    name = topic(settings, topics.SCANNERS_REGISTRY)
    consumer = Consumer(consumer_config(settings, "intellidox-cli-registry"))
    found: dict[str, ScannerHeartbeat] = {}
    try:
        for message in read_to_end(consumer, ends_of(consumer, [name], timeout_s), timeout_s):
            key, value = (message.key() or b"").decode(), message.value()
            if value is None:
                found.pop(key, None)
            else:
                found[key] = ScannerHeartbeat.decode(value)
    except TimeoutError:
        pass  # not read to its end in time: what was read (callers ask again)
    finally:
        consumer.close()
    return found


def group_lag(settings: Settings, group: str) -> int | None:
    name = topic(settings, topics.SCAN_REQUESTS)
    consumer = Consumer(consumer_config(settings, settings.topic_prefix + group))
    try:
        meta = consumer.list_topics(name, timeout=5).topics[name]
        partitions = [TopicPartition(name, p) for p in meta.partitions]
        committed = consumer.committed(partitions, timeout=5)
        lag = 0
        for tp in committed:
            end = consumer.get_watermark_offsets(tp, timeout=5)[1]
            lag += end - (tp.offset if tp.offset >= 0 else 0)
        return lag
    except Exception:
        return None
    finally:
        consumer.close()


def print_registry(settings: Settings) -> int:
    scanners = read_registry(settings)
    rows = [("NAME", "VENDOR", "OS", "ENGINE", "SIGNATURES", "ACCEPTS", "LAST HEARTBEAT", "LAG")]
    now = datetime.now(UTC)
    for name, beat in sorted(scanners.items()):
        age = (now - beat.at).total_seconds()
        lag = group_lag(settings, name)
        rows.append(
            (
                name,
                beat.vendor,
                beat.os,
                beat.engine_version,
                beat.signatures_version,
                "all" if beat.accepts is None else ",".join(beat.accepts),
                f"{age:.0f}s ago",
                "-" if lag is None else str(lag),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0
