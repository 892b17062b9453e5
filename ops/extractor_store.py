"""Where extractor scripts live: the bytes in S3, the catalogue on ``extractor.scripts``.

The compacted topic holds one record per published version (key ``version:<v>``) and one
``active`` record naming the version workers run, with the versions active before it (newest
last) so that ``rollback`` can step back more than once.  ``default-1`` is the built-in
script (``streams/extractors/default.py``), active until something else is.

This module is synchronous (confluent-kafka, boto3); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Producer

from ops.kafka import consumer_config, producer_config, topic
from ops.kafka_read import ends_of, read_to_end
from ops.settings import Settings
from schemas import topics
from schemas.scripts import ACTIVE_KEY, ExtractorScript, version_key

DEFAULT_VERSION = "default-1"
HISTORY_MAX = 50
READ_TIMEOUT_S = 15.0


MAX_SCRIPT_BYTES = 1 << 20  # the check refuses more, the admin API reads no more


class UnknownVersion(LookupError):
    pass


class ScriptRejected(ValueError):
    """The script failed validation; the message says why (for the publisher)."""


@dataclass
class ScriptState:
    """The catalogue as read from the topic."""

    versions: dict[str, ExtractorScript] = field(default_factory=dict)
    active: ExtractorScript | None = None

    @property
    def active_version(self) -> str:
        return self.active.version if self.active else DEFAULT_VERSION

    def get(self, version: str) -> ExtractorScript:
        if version == DEFAULT_VERSION:
            return default_record()
        try:
            return self.versions[version]
        except KeyError:
            known = ", ".join([DEFAULT_VERSION, *sorted(self.versions, key=version_number)])
            raise UnknownVersion(f"unknown script version {version!r}; known: {known}") from None

    def by_sha256(self, sha256: str) -> ExtractorScript | None:
        return next((v for v in self.versions.values() if v.sha256 == sha256), None)

    def next_version(self, sha256: str) -> str:
        return f"v{len(self.versions) + 1}-{sha256[:12]}"


def version_number(version: str) -> int:
    """``v12-abc`` -> 12 (``default-1`` sorts first)."""
    head = version.split("-", 1)[0]
    return int(head[1:]) if head.startswith("v") and head[1:].isdigit() else 0


def default_record() -> ExtractorScript:
    return ExtractorScript(
        version=DEFAULT_VERSION,
        object_key=None,
        sha256=None,
        size=0,
        published_at=datetime(1970, 1, 1, tzinfo=UTC),
        note="built-in script (streams/extractors/default.py)",
    )


def fold(state: ScriptState, key: str, value: ExtractorScript | None) -> None:
    """Apply one topic record to ``state``."""
    if key == ACTIVE_KEY:
        state.active = value
    elif key.startswith(version_key("")):
        name = key[len(version_key("")) :]
        if value is None:
            state.versions.pop(name, None)
        else:
            state.versions[name] = value


def version_record(
    version: str, sha256: str, size: int, now: datetime, note: str | None
) -> ExtractorScript:
    return ExtractorScript(version, f"extractors/{version}.py", sha256, size, now, note=note)


def activation(state: ScriptState, version: str, now: datetime) -> ExtractorScript:
    """The new ``active`` record that makes ``version`` active (the old one goes on the
    history)."""
    target = state.get(version)
    history = list(state.active.history) if state.active else []
    history.append(state.active_version)
    return _active(target, state.active_version, history[-HISTORY_MAX:], now)


def rollback(state: ScriptState, now: datetime) -> ExtractorScript:
    """The ``active`` record for the version that was active before the current one."""
    history = list(state.active.history) if state.active else []
    if not history:
        raise UnknownVersion("nothing to roll back to: no earlier active version")
    target = state.get(history.pop())
    return _active(target, state.active_version, history, now)


def _active(
    target: ExtractorScript, previous: str, history: list[str], now: datetime
) -> ExtractorScript:
    return replace(target, activated_at=now, previous_version=previous, history=tuple(history))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- Kafka -------------------------------------------------------------------------------


def read_state(settings: Settings) -> ScriptState:
    """Read the compacted topic from its start to its end."""
    name = topic(settings, topics.EXTRACTOR_SCRIPTS)
    consumer = Consumer(
        consumer_config(settings, f"{settings.topic_prefix}extractor-admin-{uuid.uuid4().hex[:8]}")
    )
    state = ScriptState()
    try:
        ends = ends_of(consumer, [name], READ_TIMEOUT_S)
        for message in read_to_end(consumer, ends, READ_TIMEOUT_S):
            raw_key, raw_value = message.key(), message.value()
            if raw_key is not None:
                key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
                fold(state, key, ExtractorScript.decode(raw_value) if raw_value else None)
    finally:
        consumer.close()
    return state


def write_records(settings: Settings, records: list[tuple[str, ExtractorScript]]) -> None:
    """Produce ``(key, record)`` pairs, in order, and wait until they are acknowledged."""
    producer = Producer(producer_config(settings))
    errors: list[str] = []
    name = topic(settings, topics.EXTRACTOR_SCRIPTS)
    for key, record in records:
        producer.produce(
            name,
            key=key.encode(),
            value=record.encode(),
            on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
        )
    if producer.flush(READ_TIMEOUT_S) or errors:
        raise RuntimeError(f"could not write to {name}: {errors or 'timed out'}")


# --- S3 ----------------------------------------------------------------------------------


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def put_script(s3: Any, settings: Settings, record: ExtractorScript, source: bytes) -> None:
    ensure_bucket(s3, settings.s3.scripts_bucket)
    s3.put_object(
        Bucket=settings.s3.scripts_bucket,
        Key=record.object_key,
        Body=source,
        ContentType="text/x-python",
        Metadata={"sha256": record.sha256 or "", "version": record.version},
    )


def get_script(s3: Any, settings: Settings, object_key: str) -> bytes:
    return bytes(s3.get_object(Bucket=settings.s3.scripts_bucket, Key=object_key)["Body"].read())
