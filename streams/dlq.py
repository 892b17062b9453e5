"""Poison events go to ``<topic>.dlq`` with the reason in headers; the stream moves on."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from schemas.topics import dlq

log = logging.getLogger(__name__)


def dlq_headers(source_topic: str, partition: int, offset: int, exc: BaseException) -> dict[str, bytes]:
    return {
        "x-error": f"{type(exc).__name__}: {exc}"[:1000].encode(),
        "x-source-topic": source_topic.encode(),
        "x-source-partition": str(partition).encode(),
        "x-source-offset": str(offset).encode(),
        "x-trace": "".join(traceback.format_exception(exc))[-2000:].encode(),
    }


async def send_to_dlq(app: Any, event: Any, exc: BaseException) -> None:
    message = event.message
    log.warning("poison event %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc)
    target = app.topic(dlq(message.topic), key_type=bytes, value_type=bytes)
    await target.send(
        key=message.key, value=message.value,
        headers=dlq_headers(message.topic, message.partition, message.offset, exc),
    )
