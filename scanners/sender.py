"""One Kafka producer per scanner process, shared by all its runners, acknowledging by callback.

Each runner used to own a producer and wait for Kafka after every verdict (``flush``): twenty
scanner groups in one process meant twenty producers, twenty sets of broker connections and
threads, and a consumer that could do nothing else while its verdict travelled.  Now a
record is queued with an ``on_ack`` callback that runs once Kafka acknowledged it (on the
sender's own thread), and the caller moves on; the runner commits a request only after its
records are acknowledged (see :mod:`scanners.inflight`).  A record Kafka refuses is sent
again (after a pause, so a lasting refusal does not spin): a request whose verdict never gets
through is never committed, and is redelivered after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from ops.kafka import producer_config
from ops.settings import Settings

log = logging.getLogger(__name__)
RESEND_AFTER_S = 1.0
SLOW_ACK_S = 5.0
Headers = dict[str, str | bytes | None]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


class Sender:
    def __init__(self, settings: Settings, **config: Any) -> None:
        self.producer = Producer(producer_config(settings, **config))
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-acks", daemon=True)
        self._thread.start()

    def send(self, record: Record, on_ack: Callable[[], None] | None = None) -> None:
        """Queue ``record``; ``on_ack`` runs once Kafka has it.  Without ``on_ack`` (a
        heartbeat: the next one replaces it) a refused record is only logged."""

        queued = time.monotonic()

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                took = time.monotonic() - queued
                if took > SLOW_ACK_S:  # a verdict held back this long looks lost downstream
                    log.warning("kafka took %.1fs to acknowledge %s", took, record.topic)
                if on_ack is not None:
                    on_ack()
                return
            log.warning("kafka refused a record for %s: %s", record.topic, error)
            if on_ack is not None and not self._closing.is_set():
                timer = threading.Timer(RESEND_AFTER_S, self.send, (record, on_ack))
                timer.daemon = True
                timer.start()

        self._produce(record, delivered)

    def _produce(self, record: Record, delivered: Callable[[Any, Any], None]) -> None:
        while True:
            try:
                self.producer.produce(
                    record.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    on_delivery=delivered,
                )
                return
            except BufferError:  # the local queue is full: wait for acknowledgements
                time.sleep(0.05)

    def _serve(self) -> None:
        while not self._closing.is_set():
            self.producer.poll(0.2)

    def close(self, timeout_s: float = 10.0) -> int:
        """Send what is queued (up to ``timeout_s``); returns how many records were left.
        The acknowledgements then run on this thread (never on two threads at once)."""
        self._closing.set()
        self._thread.join(5)
        return int(self.producer.flush(timeout_s))
