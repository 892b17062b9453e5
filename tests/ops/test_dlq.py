"""Operators list dead letters by reason, and a replay never puts the same letter back twice."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Producer

from ops.dlq import entries, replay_dead_letters, summarize
from ops.kafka import producer_config, topic
from ops.replay import read_all
from ops.settings import Settings
from ops.stack import stack_env
from schemas import topics
from schemas.dead_letters import DeadLetter
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration
SOURCE = topics.DOCS_STATUS


@pytest.fixture
def private(settings: Settings, kafka_topics: str) -> Settings:
    """Settings on this test's own topics (no processes read them)."""
    return settings.with_overrides(topic_prefix=kafka_topics)


def bury(settings: Settings, key: str, error: str, at_ms: int) -> None:
    """A dead letter as a stage would write it, failed at ``at_ms``."""
    letter = DeadLetter(error, "materializer", topic(settings, SOURCE), 2, 7, at_ms)
    producer = Producer(producer_config(settings))
    producer.produce(
        topic(settings, topics.dlq(SOURCE)),
        key=key.encode(),
        value=f"event of {key}".encode(),
        headers=letter.headers(),
        timestamp=at_ms,
    )
    producer.flush(10)


def on_source(settings: Settings) -> Counter[str]:
    return Counter((m.key() or b"").decode() for m in read_all(settings, topic(settings, SOURCE)))


def test_list_counts_waiting_letters_by_reason_and_shows_the_oldest(private: Settings) -> None:
    now = int(time.time() * 1000)
    doc = str(uuid.uuid4())
    bury(private, doc, f"ValueError: document {doc} has no row at offset 12", now - 60_000)
    bury(private, "b", f"ValueError: document {uuid.uuid4()} has no row at offset 99", now - 5000)
    bury(private, "c", "KeyError: 'status'", now - 1000)
    (summary,) = summarize(private, (SOURCE,))
    assert (summary.total, summary.replayed) == (3, 0)
    assert dict(summary.waiting_by_reason) == {
        "ValueError: document <id> has no row at offset <n>": 2,
        "KeyError: <value>": 1,
    }
    assert summary.oldest_waiting is not None
    assert (summary.oldest_waiting.key, summary.oldest_waiting.timestamp_ms) == (doc, now - 60_000)
    assert summary.oldest_waiting.letter.stage == "materializer"
    assert summarize(private, (topics.DOCS_CONFIRMED,))[0].total == 0


def test_a_second_replay_repeats_nothing_and_a_new_letter_goes_back_once(
    private: Settings,
) -> None:
    now = int(time.time() * 1000)
    for key in ("a", "b", "c"):
        bury(private, key, "RuntimeError: the sink had a bug", now)
    assert replay_dead_letters(private, SOURCE) == 3
    assert on_source(private) == {"a": 1, "b": 1, "c": 1}
    assert replay_dead_letters(private, SOURCE) == 0
    assert on_source(private) == {"a": 1, "b": 1, "c": 1}
    (summary,) = summarize(private, (SOURCE,))
    assert (summary.total, summary.replayed, summary.waiting_by_reason) == (3, 3, ())
    assert summary.oldest_waiting is None
    bury(private, "d", "RuntimeError: failed again", now + 1)
    assert [e.key for e in entries(private, SOURCE, waiting_only=True)] == ["d"]
    assert replay_dead_letters(private, SOURCE) == 1
    assert on_source(private) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_the_cli_lists_and_replays(private: Settings) -> None:
    bury(private, "x", "KeyError: 'status'", int(time.time() * 1000))
    env = stack_env(private)

    def cli(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ops.cli", "dlq", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = cli("list")
    assert "docs.status.dlq: 1 in all, 0 put back, 1 waiting" in listed
    assert "1  KeyError: <value>" in listed and "oldest:" in listed and "key x" in listed
    assert "put 1 events back" in cli("replay", SOURCE)
    assert "put 0 events back" in cli("replay", SOURCE)
    assert "docs.status.dlq: 1 in all, 1 put back, 0 waiting" in cli("list", SOURCE)


def test_the_worker_dead_letters_poison_with_the_one_header_format(pipeline: Pipeline) -> None:
    key = str(uuid.uuid4())
    producer = Producer(producer_config(pipeline.settings))
    producer.produce(
        topic(pipeline.settings, topics.DOCS_CONFIRMED), key=key.encode(), value=b"junk"
    )
    producer.flush(10)
    found = None
    for _ in range(40):  # the worker sends it to docs.confirmed.dlq
        found = next(
            (e for e in entries(pipeline.settings, topics.DOCS_CONFIRMED) if e.key == key), None
        )
        if found is not None:
            break
        time.sleep(0.25)
    assert found is not None, "the poison event never reached the dead-letter topic"
    letter = found.letter
    assert "not a Confluent Avro message" in letter.error
    assert letter.source_topic == topic(pipeline.settings, topics.DOCS_CONFIRMED)
    assert letter.stage in ("extraction", "tracker")  # both read docs.confirmed
    assert letter.source_offset is not None and letter.failed_at_ms > 0
