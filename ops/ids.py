"""Document ids are UUIDv7: time-ordered, so the id alone tells the row's creation time.

That lets a lookup by id hit exactly one Postgres partition (``created_at`` is the partition
key) and keeps Cassandra/Kafka keys spread evenly.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A RFC 9562 version-7 UUID: 48-bit Unix ms timestamp, then 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return uuid.UUID(int=value)


def created_at_of(doc_id: uuid.UUID) -> datetime:
    """The creation time encoded in a v7 id (millisecond precision)."""
    if doc_id.version != 7:
        raise ValueError(f"{doc_id} is not a version-7 document id")
    return datetime.fromtimestamp((doc_id.int >> 80) / 1000, tz=UTC)


# The canonical text of a version-7 UUID (the OpenAPI spec declares the same pattern).
DOC_ID_PATTERN = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)
_DOC_ID = re.compile(DOC_ID_PATTERN, re.ASCII)


def parse_doc_id(text: str) -> uuid.UUID:
    """Parse a document id from a URL; ValueError with a readable reason when it is not one."""
    shown = text[:64].encode("ascii", "backslashreplace").decode()
    if not _DOC_ID.fullmatch(text):
        raise ValueError(f"'{shown}' is not a document id (expected a version-7 UUID)")
    doc_id = uuid.UUID(text)
    try:
        created_at_of(doc_id)
    except (ValueError, OverflowError, OSError):  # a v7 id from the far future
        raise ValueError(f"'{shown}' is not a document id (its time is out of range)") from None
    return doc_id
