"""Poison events go to ``<topic>.dlq`` with the reason in headers; the stream moves on."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ops.backoff import Backoff, GaveUp, Rule, retrying
from ops.logs import current_context, log_context
from ops.metrics import DEAD_LETTERS
from schemas.dead_letters import DeadLetter
from schemas.events import decode_as
from schemas.record import Record
from schemas.topics import dlq
from streams import app as worker_app

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Record)


def dlq_headers(
    source_topic: str, partition: int, offset: int, exc: BaseException, stage: str = "worker"
) -> dict[str, bytes]:
    trace = "".join(traceback.format_exception(exc))
    error = f"{type(exc).__name__}: {exc}"
    return DeadLetter.now(error, stage, source_topic, partition, offset, trace=trace).headers()


async def send_to_dlq(app: Any, event: Any, exc: BaseException) -> None:
    message = event.message
    stage = str(current_context().get("stage", "worker"))
    doc_id = (message.key or b"").decode(errors="replace") or None
    with log_context(
        stage=stage,
        doc_id=doc_id,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    ):
        log.warning("dead-lettered: %s", exc, extra={"reason": f"{type(exc).__name__}: {exc}"})
    DEAD_LETTERS.labels(message.topic.removeprefix(worker_app.settings.topic_prefix)).inc()
    target = app.topic(dlq(message.topic), key_type=bytes, value_type=bytes)
    await target.send(
        key=message.key,
        value=message.value,
        headers=dlq_headers(message.topic, message.partition, message.offset, exc, stage),
    )


OUTAGE = Backoff(attempts=None, base_s=0.2, cap_s=5.0)  # a store or Kafka away: retried until back
HANDLER = Backoff(attempts=3, base_s=0.2, cap_s=5.0)  # anything else: a few tries, then the DLQ


def _store_outages() -> tuple[type[BaseException], ...]:
    """Errors that mean 'a store is away for now', not 'this event is bad'."""
    import psycopg
    from cassandra import OperationTimedOut, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable

    return (
        psycopg.OperationalError,
        NoHostAvailable,
        OperationTimedOut,
        Unavailable,
        WriteTimeout,
        ConnectionError,
        TimeoutError,
    )


STORE_OUTAGES = _store_outages()


def _outages() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaError
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    return (*STORE_OUTAGES, KafkaError, EndpointConnectionError, ConnectionClosedError)


# Retried until they pass: nothing about the event is wrong, a store or Kafka is away.
OUTAGES = _outages()


def handler_rules(transient: tuple[type[BaseException], ...] | None = None) -> list[Rule]:
    """How a handler's failure is retried: ``transient`` errors (by default a store or Kafka
    away) until they pass, anything else a few times before the event is dead-lettered."""
    return [(OUTAGES if transient is None else transient, OUTAGE), (Exception, HANDLER)]


async def handle_or_dead_letter(
    app: Any,
    event: Any,
    record_type: type[R],
    handler: Callable[[R], Awaitable[None]],
    transient: tuple[type[BaseException], ...] | None = None,
    stage: str = "worker",
) -> None:
    """Decode one event into ``record_type`` (the record its topic carries) and handle it.
    An event that is not such a record goes to the dead-letter topic at once.  Transient
    errors (a store away) are retried until they pass; anything else gets a few tries, then
    the event goes to the dead-letter topic.
    Whatever is logged meanwhile carries the stage, the document and the event's place."""
    message = event.message
    with log_context(
        stage=stage, topic=message.topic, partition=message.partition, offset=message.offset
    ):
        try:
            record = decode_as(record_type, event.value)
        except ValueError as exc:
            await send_to_dlq(app, event, exc)
            return
        where = {name: getattr(record, name, None) for name in ("doc_id", "tenant")}
        with log_context(**where):
            await _handle(app, event, record, handler, transient)


async def _handle(
    app: Any,
    event: Any,
    record: R,
    handler: Callable[[R], Awaitable[None]],
    transient: tuple[type[BaseException], ...] | None,
) -> None:
    def retried(tries: int, pause: float, exc: BaseException) -> None:
        log.warning("failure on %s (try %d); retrying", event.message.topic, tries, exc_info=True)

    try:
        await retrying(lambda: handler(record), handler_rules(transient), retried)
    except GaveUp as gave_up:
        await send_to_dlq(app, event, gave_up.last or gave_up)
