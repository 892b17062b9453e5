"""Operators' dead-letter verbs: what went to ``<topic>.dlq`` and why, and putting it back.

``intellidox dlq list`` shows, per dead-letter topic, how many entries there are, how many were
put back already, and of those still waiting: counts by reason and the oldest one.

``intellidox dlq replay TOPIC`` puts the waiting dead letters of ``TOPIC`` back on it, once the
cause is fixed.  What it has put back is remembered as the committed offset of the consumer
group ``<prefix>intellidox-dlq-replay`` on each dead-letter topic: committed only after every
record was acknowledged, so a second replay starts where the first ended and repeats nothing
(a crash between the two repeats that one batch; every consumer is idempotent).  An event that
fails again is a new dead letter, and a later replay puts that back once more.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from ops.kafka import consumer_config, producer_config, topic
from ops.kafka_read import Place
from ops.replay import read_all
from ops.settings import Settings
from schemas import topics
from schemas.dead_letters import DeadLetter, replayed_headers

GROUP = "intellidox-dlq-replay"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Entry:
    """One dead letter: where it sits, its key (the document id) and why it is there."""

    source: str  # the topic it came from, without the prefix (docs.confirmed)
    topic: str  # the dead-letter topic (physical name)
    partition: int
    offset: int
    key: str
    timestamp_ms: int
    letter: DeadLetter


@dataclass(frozen=True)
class Summary:
    """One dead-letter topic: entries in all, put back already, and the waiting ones."""

    source: str
    total: int
    replayed: int
    waiting_by_reason: tuple[tuple[str, int], ...]
    oldest_waiting: Entry | None


def group_id(settings: Settings) -> str:
    return settings.topic_prefix + GROUP


def entry_of(source: str, message: Message) -> Entry:
    stamp = message.timestamp()[1]
    pairs = cast(list[tuple[str, bytes | None]], message.headers() or [])
    return Entry(
        source,
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        (message.key() or b"").decode(errors="replace"),
        stamp,
        DeadLetter.from_headers(pairs, stamp),
    )


def replayed_offsets(settings: Settings, names: list[str]) -> dict[Place, int]:
    """Per partition of these dead-letter topics: the offset replay has reached (0: none)."""
    consumer = Consumer(consumer_config(settings, group_id(settings)))
    try:
        asked = [
            TopicPartition(name, p)
            for name in names
            for p in consumer.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions
        ]
        committed = consumer.committed(asked, timeout=TIMEOUT_S) if asked else []
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()


def _remember(settings: Settings, offsets: dict[Place, int]) -> None:
    consumer = Consumer(consumer_config(settings, group_id(settings)))
    try:
        done = [TopicPartition(name, p, offset) for (name, p), offset in offsets.items()]
        consumer.commit(offsets=done, asynchronous=False)
    finally:
        consumer.close()


def entries(settings: Settings, source: str, waiting_only: bool = False) -> Iterator[Entry]:
    name = topic(settings, topics.dlq(source))
    start = replayed_offsets(settings, [name]) if waiting_only else None
    for message in read_all(settings, name, TIMEOUT_S, start=start):
        yield entry_of(source, message)


def summarize(settings: Settings, sources: tuple[str, ...] = topics.FACT_TOPICS) -> list[Summary]:
    """One summary per source topic (in that order), all read with one consumer."""
    by_name = {topic(settings, topics.dlq(source)): source for source in sources}
    replayed = replayed_offsets(settings, list(by_name))
    seen: dict[str, list[Entry]] = {source: [] for source in sources}
    for message in read_all(settings, list(by_name), TIMEOUT_S):
        seen[by_name[message.topic() or ""]].append(
            entry_of(by_name[message.topic() or ""], message)
        )
    return [_summary(source, seen[source], replayed) for source in sources]


def _summary(source: str, found: list[Entry], replayed: dict[Place, int]) -> Summary:
    waiting = [e for e in found if e.offset >= replayed.get((e.topic, e.partition), 0)]
    reasons = Counter(e.letter.reason for e in waiting)
    oldest = min(waiting, key=lambda e: e.timestamp_ms, default=None)
    return Summary(
        source, len(found), len(found) - len(waiting), tuple(reasons.most_common()), oldest
    )


def replay_dead_letters(settings: Settings, source: str) -> int:
    """Put the waiting dead letters of ``source`` back on it; returns how many."""
    name = topic(settings, topics.dlq(source))
    reached = replayed_offsets(settings, [name])
    producer = Producer(producer_config(settings))
    count = 0
    for message in read_all(settings, name, TIMEOUT_S, start=reached):
        headers = replayed_headers(cast(list[tuple[str, bytes | None]], message.headers() or []))
        producer.produce(
            topic(settings, source), key=message.key(), value=message.value(), headers=headers
        )
        reached[(name, message.partition() or 0)] = (message.offset() or 0) + 1
        count += 1
    if producer.flush(30):
        raise KafkaException(f"dlq replay: {source} not acknowledged; nothing remembered")
    if count:
        _remember(settings, reached)
    return count


def format_summary(summary: Summary, now_ms: int) -> list[str]:
    waiting = summary.total - summary.replayed
    lines = [
        f"{topics.dlq(summary.source)}: {summary.total} in all, "
        f"{summary.replayed} put back, {waiting} waiting"
    ]
    lines += [f"  {count:6d}  {reason}" for reason, count in summary.waiting_by_reason]
    oldest = summary.oldest_waiting
    if oldest is not None:
        age_s = max(0, now_ms - oldest.timestamp_ms) // 1000
        lines.append(
            f"  oldest: {_iso(oldest.timestamp_ms)} ({_age(age_s)} ago) key {oldest.key} "
            f"at {oldest.partition}@{oldest.offset}, from {oldest.letter.stage or '?'}"
            + (f"/{oldest.letter.scanner}" if oldest.letter.scanner else "")
            + f": {oldest.letter.error.splitlines()[0] if oldest.letter.error else '?'}"
        )
    return lines


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def summary_json(summary: Summary) -> dict[str, Any]:
    body = asdict(summary)
    body["waiting_by_reason"] = dict(summary.waiting_by_reason)
    return body


def add_dlq_verb(verbs: Any) -> None:
    dlq_verb = verbs.add_parser("dlq", help="list dead letters, or put them back on their topic")
    dlq_verb.add_argument("action", choices=["list", "replay"])
    dlq_verb.add_argument(
        "source",
        nargs="?",
        choices=topics.FACT_TOPICS,
        help="replay: the topic whose dead letters go back (list: only this one)",
    )
    dlq_verb.add_argument("--json", action="store_true", help="list: one JSON object per topic")
    dlq_verb.set_defaults(handler=_cmd_dlq)


def _cmd_dlq(args: Any) -> int:
    from ops.settings import get_settings

    settings = get_settings()
    if args.action == "replay":
        if args.source is None:
            raise SystemExit("dlq replay needs the source topic, e.g. docs.confirmed")
        count = replay_dead_letters(settings, args.source)
        print(f"put {count} events back on {args.source} (already put back: not repeated)")
        return 0
    now_ms = int(time.time() * 1000)
    summaries = summarize(settings, (args.source,) if args.source else topics.FACT_TOPICS)
    for summary in summaries:
        if args.json:
            print(json.dumps(summary_json(summary), default=str))
        elif summary.total or args.source:
            print("\n".join(format_summary(summary, now_ms)))
    if not args.json and not any(s.total for s in summaries) and not args.source:
        print("no dead letters")
    return 0
