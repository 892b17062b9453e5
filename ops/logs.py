"""Logs of the long-running processes: one JSON line per event, secrets scrubbed.

Every line carries ``time``, ``level``, ``process``, ``logger``, ``message`` and, wherever they
apply, ``stage``, ``doc_id``, ``tenant``, ``scanner``, ``topic``, ``partition`` and ``offset``,
so ``grep <doc id>`` (or ``jq 'select(.doc_id == ...)'``) over the logs of the gateway, the
worker and the scanner hosts tells what happened to a document.  The fields come from
``extra=`` on the call or from :func:`log_context`, which binds them for everything logged
while one event is handled (a contextvar: per asyncio task, per thread).

No secret reaches a log: :class:`Redactor`, a filter on the handler (so it sees every logger's
records, Faust's and libraries' included), scrubs the configured secret values, the query
strings of URLs (pre-signed URLs carry their signature there), AWS signature and credential
parameters, passwords, API keys, tokens and bearer credentials, in messages and tracebacks.
Operators' command-line tools keep human output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import os
import re
import select
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ops.settings import Settings, settings_environment

CONTEXT_FIELDS = ("stage", "doc_id", "tenant", "scanner", "topic", "partition", "offset")
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"password|secret|api_key|token$")
_MIN_SECRET = 6  # shorter values would scrub ordinary words

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("intellidox_log_context")

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # The query string of any absolute URL: a pre-signed URL's signature, credential, expiry.
    (re.compile(r"(?i)(\bhttps?://[^\s?#\"'<>]*)\?[^\s\"'<>]*"), r"\1?" + REDACTED),
    # AWS signature/credential/token parameters wherever they appear (headers, escaped URLs).
    (
        re.compile(
            r"(?i)[\w-]*(?:signature|credential|security-token|awsaccesskeyid)"
            r"[\"']?\s*[:=]\s*[\"']?[^&\s\"',}]+"
        ),
        REDACTED,
    ),
    (re.compile(r"(?i)\bbearer\s+[\w.~+/=-]+"), "Bearer " + REDACTED),
    # password=..., "api_key": "...", token: ..., x-api-key ...
    (
        re.compile(
            r"(?i)\b((?:[\w.-]*password|passwd|[\w.-]*secret|api[_-]?key|[\w.-]*token)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
        ),
        r"\1" + REDACTED,
    ),
    # user:password@host in URLs and DSNs.
    (re.compile(r"(://[^:/\s@]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
)


def secret_values(settings: Settings) -> tuple[str, ...]:
    """The settings' secrets (passwords, keys, signing secret, tokens), longest first."""
    found = set()
    for variable, value in settings_environment(settings).items():
        is_secret = _SECRET_NAME.search(variable.lower()) is not None
        if is_secret and len(value) >= _MIN_SECRET:
            found.add(value)
    return tuple(sorted(found, key=len, reverse=True))


# Every pattern above needs one of these words: a text without any (most log lines) is
# scrubbed by one scan instead of five (redaction was ~8 % of a scanner host's CPU).
_ANY_PATTERN = re.compile(
    r"(?i)://|signature|credential|security-token|awsaccesskeyid|bearer|passw|secret"
    r"|api[_-]?key|token"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _ANY_PATTERN.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    """Scrubs a record's message and traceback before any formatter sees them."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the fixed fields, then the context, then ``extra=`` fields."""

    def __init__(self, process: str = "intellidox") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get(_EMPTY))
        entry.update(
            (k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that formats outside its lock and writes a line with one ``write(2)``.

    ``StreamHandler`` formats and writes under one lock; the write gives up the GIL while the
    lock is held, so the twenty scanner threads of a scanner host queued on it (lock handoffs
    were ~12 % of the host's time).  One write of a whole line needs no lock: a file or pipe
    takes it at once (a pipe up to ``PIPE_BUF`` bytes).  A longer line, or a stream with no
    file descriptor (a test's capture), goes through the lock as before."""

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return True
        data = line.encode("utf-8", "backslashreplace")
        fd = self._fd()
        if fd is None or len(data) > select.PIPE_BUF:
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(line)
                self.flush()
            return True
        try:
            _write_all(fd, data)
        except OSError:
            self.handleError(record)
        return True

    def _fd(self) -> int | None:
        try:
            return int(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            return None


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields (``doc_id=...``, ``topic=...``) to every line logged inside the block."""
    bound = {k: v for k, v in fields.items() if v is not None}
    token = _context.set({**_context.get(_EMPTY), **bound})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    return _context.get(_EMPTY)


def logging_config(
    process: str, settings: Settings | None = None, level: str = "INFO"
) -> dict[str, Any]:
    """A ``dictConfig`` for a service process (Faust takes it as ``logging_config``)."""
    secrets = secret_values(settings) if settings is not None else ()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": Redactor, "secrets": secrets}},
        "formatters": {"json": {"()": JsonFormatter, "process": process}},
        "handlers": {
            "default": {
                "class": "ops.logs.LineHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["redact"],
                "level": level,
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def setup_logging(process: str, settings: Settings | None = None, level: str = "INFO") -> None:
    """JSON lines on stderr for ``process`` (gateway, worker, scanners, engine)."""
    logging.config.dictConfig(logging_config(process, settings, level))
