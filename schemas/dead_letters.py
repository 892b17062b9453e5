"""The one header format of every dead letter (``<topic>.dlq``), whoever wrote it.

A dead letter keeps the poison event's key and value untouched; the headers say where it came
from and why it was given up: the worker's stages and the scanner hosts write the same ones,
and ``intellidox dlq``/``trace`` read them back.

    x-error             "<ExceptionType>: <message>" (at most 1000 characters)
    x-stage             who gave up: extraction, tracker, materializer, reextraction, scanner
    x-scanner           the scanner's name (scanner hosts only)
    x-source-topic      the topic the event was read from (physical name)
    x-source-partition  its partition
    x-source-offset     its offset
    x-failed-at         when it was given up (ms since the epoch)
    x-trace             the end of the traceback, when there is one

A dead letter put back on its topic (``intellidox dlq replay``) keeps them all and gains

    x-replayed-at       when it was put back (seconds since the epoch)
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

ERROR_LIMIT = 1000
TRACE_LIMIT = 2000
_VARIABLE = (
    (re.compile(r"(?i)\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
)
REASON_LIMIT = 120


@dataclass(frozen=True)
class DeadLetter:
    error: str
    stage: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    failed_at_ms: int
    scanner: str | None = None
    trace: str = ""

    @classmethod
    def now(
        cls,
        error: str,
        stage: str,
        source_topic: str,
        partition: int | None,
        offset: int | None,
        scanner: str | None = None,
        trace: str = "",
    ) -> DeadLetter:
        return cls(
            error[:ERROR_LIMIT],
            stage,
            source_topic,
            partition,
            offset,
            int(time.time() * 1000),
            scanner,
            trace[-TRACE_LIMIT:],
        )

    def headers(self) -> dict[str, bytes]:
        headers = {
            "x-error": self.error.encode(),
            "x-stage": self.stage.encode(),
            "x-source-topic": self.source_topic.encode(),
            "x-source-partition": _text(self.source_partition).encode(),
            "x-source-offset": _text(self.source_offset).encode(),
            "x-failed-at": str(self.failed_at_ms).encode(),
        }
        if self.scanner is not None:
            headers["x-scanner"] = self.scanner.encode()
        if self.trace:
            headers["x-trace"] = self.trace.encode()
        return headers

    @classmethod
    def from_headers(
        cls, pairs: Iterable[tuple[str, bytes | str | None]], timestamp_ms: int = 0
    ) -> DeadLetter:
        """Read the headers back; a missing one (an older record) is empty, not an error.
        ``timestamp_ms`` (the record's) stands in for a missing ``x-failed-at``."""
        found = {key: _decoded(value) for key, value in pairs}
        return cls(
            error=found.get("x-error", ""),
            stage=found.get("x-stage") or ("scanner" if "x-scanner" in found else ""),
            source_topic=found.get("x-source-topic", ""),
            source_partition=_number(found.get("x-source-partition")),
            source_offset=_number(found.get("x-source-offset")),
            failed_at_ms=_number(found.get("x-failed-at")) or timestamp_ms,
            scanner=found.get("x-scanner"),
            trace=found.get("x-trace", ""),
        )

    @property
    def reason(self) -> str:
        """The error with its variable parts (ids, numbers, quoted values) masked, so like
        failures count together."""
        first = self.error.splitlines()[0] if self.error else "(no reason given)"
        for pattern, mask in _VARIABLE:
            first = pattern.sub(mask, first)
        return first[:REASON_LIMIT]


def replayed_headers(
    headers: Iterable[tuple[str, bytes | str | None]], now_s: float | None = None
) -> list[tuple[str, bytes | str | None]]:
    """A dead letter's headers as it goes back on its topic: all kept, ``x-replayed-at`` added."""
    at = time.time() if now_s is None else now_s
    return [*headers, ("x-replayed-at", str(at).encode())]


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _decoded(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
