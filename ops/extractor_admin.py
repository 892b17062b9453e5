"""Extractor script operations, shared by the CLI and the gateway's admin API.

publish (validate, store, announce), list, show, activate, rollback and reextract.  Failures
are :class:`AdminError` with an HTTP-like status, so both front ends report them the same way.
Part of the foundation (both front ends import it), so the check that runs a script in the
worker's sandbox (:func:`streams.script_check.check`) is passed in by whoever starts them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from ops import extractor_store as store
from ops.kafka import producer_config, topic
from ops.s3 import bucket_for, s3_client
from ops.settings import Settings
from schemas import topics
from schemas.documents import DocsReextract
from schemas.scripts import ACTIVE_KEY, ExtractorScript, version_key

DEFAULT_SCRIPT = Path(__file__).resolve().parents[1] / "streams" / "extractors" / "default.py"
# Validates a script before it is stored; raises store.ScriptRejected saying why.
ScriptCheck = Callable[[Settings, bytes], Awaitable[None]]
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass
class AdminError(Exception):
    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def public(record: ExtractorScript, active: str | None = None) -> dict[str, Any]:
    """A catalogue record as JSON-friendly values (the admin API's and the CLI's view)."""
    fields = record.to_record().items()
    out = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields}
    if active is not None:
        out["active"] = record.version == active
    return out


async def _state(settings: Settings) -> store.ScriptState:
    return await asyncio.to_thread(store.read_state, settings)


async def publish(
    settings: Settings,
    source: bytes,
    check: ScriptCheck,
    activate: bool = False,
    note: str | None = None,
) -> dict[str, Any]:
    """Validate and store a script; an identical script already published is reused."""
    try:
        await check(settings, source)
    except store.ScriptRejected as exc:
        raise AdminError(422, f"script refused: {exc}") from None
    state, now, sha = await _state(settings), datetime.now(UTC), store.sha256_of(source)
    record = state.by_sha256(sha)
    writes: list[tuple[str, ExtractorScript]] = []
    created = record is None
    if record is None:
        record = store.version_record(state.next_version(sha), sha, len(source), now, note)
        s3 = s3_client(settings)
        await asyncio.to_thread(store.put_script, s3, settings, record, source)
        writes.append((version_key(record.version), record))
        store.fold(state, *writes[-1])
    if activate and state.active_version != record.version:
        writes.append((ACTIVE_KEY, store.activation(state, record.version, now)))
    await asyncio.to_thread(store.write_records, settings, writes)
    active = record.version if activate else state.active_version
    return {**public(record, active), "created": created}


async def activate(settings: Settings, version: str) -> dict[str, Any]:
    state = await _state(settings)
    try:
        state.get(version)
    except store.UnknownVersion as exc:
        raise AdminError(404, str(exc)) from None
    if state.active_version == version and state.active is not None:
        return public(state.active)
    record = store.activation(state, version, datetime.now(UTC))
    await asyncio.to_thread(store.write_records, settings, [(ACTIVE_KEY, record)])
    return public(record)


async def rollback(settings: Settings) -> dict[str, Any]:
    state = await _state(settings)
    try:
        record = store.rollback(state, datetime.now(UTC))
    except store.UnknownVersion as exc:
        raise AdminError(409, str(exc)) from None
    await asyncio.to_thread(store.write_records, settings, [(ACTIVE_KEY, record)])
    return public(record)


async def list_versions(settings: Settings) -> list[dict[str, Any]]:
    state = await _state(settings)
    records = [store.default_record(), *state.versions.values()]
    records.sort(key=lambda r: store.version_number(r.version))
    return [public(r, state.active_version) for r in records]


async def show(settings: Settings, version: str) -> dict[str, Any]:
    state = await _state(settings)
    try:
        record = state.get(version)
    except store.UnknownVersion as exc:
        raise AdminError(404, str(exc)) from None
    if record.object_key is None:
        source = DEFAULT_SCRIPT.read_bytes()
    else:
        s3 = s3_client(settings)
        source = await asyncio.to_thread(store.get_script, s3, settings, record.object_key)
    return {**public(record, state.active_version), "source": source.decode()}


class BadSince(argparse.ArgumentTypeError, ValueError):
    pass


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``45s`` ago, or an ISO date/time (UTC unless it says)."""
    match = _RELATIVE.match(text.strip())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadSince(
            f"--since {text!r}: use an ISO date/time (2026-01-31, 2026-01-31T08:00) or 7d/12h/30m"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


_DOCS = (
    "SELECT id, tenant, file_name, file_size, content_type, created_at, object_version"
    " FROM documents"
    " WHERE created_at >= %s AND uploaded_at IS NOT NULL"
    " AND process_status NOT IN ('requested', 'rejected')"
    " AND (%s::text IS NULL OR tenant = %s) ORDER BY created_at"
)


async def reextract(
    settings: Settings, since: datetime, version: str | None = None, tenant: str | None = None
) -> dict[str, Any]:
    """Ask the workers to extract stored documents again (``docs.reextract``; no new scan)."""
    script: ExtractorScript | None = None
    if version is not None:
        try:
            script = (await _state(settings)).get(version)
        except store.UnknownVersion as exc:
            raise AdminError(404, str(exc)) from None
    async with await psycopg.AsyncConnection.connect(settings.postgres.dsn) as conn:
        cur = await conn.execute(_DOCS, (since, tenant, tenant))
        rows = await cur.fetchall()
    now = datetime.now(UTC)
    events = [_request(settings, row, script, now) for row in rows]
    await asyncio.to_thread(_send, settings, events)
    return {"requested": len(events), "since": since.isoformat(), "version": version}


def _request(
    settings: Settings, row: tuple[Any, ...], script: ExtractorScript | None, now: datetime
) -> tuple[str, bytes]:
    doc_id, tenant, file_name, file_size, content_type, created_at, object_version = row
    record = DocsReextract(
        doc_id=str(doc_id),
        tenant=tenant,
        file_name=file_name,
        file_size=file_size,
        content_type=content_type,
        bucket=bucket_for(settings, created_at.year),
        key=str(doc_id),
        script_version=script.version if script else None,
        script_key=script.object_key if script else None,
        script_sha256=script.sha256 if script else None,
        requested_at=now,
        version_id=object_version,  # the bytes pinned at confirm, never a later PUT
    )
    return record.doc_id, record.encode()


def _send(settings: Settings, events: list[tuple[str, bytes]]) -> None:
    producer = Producer(producer_config(settings))
    name, errors = topic(settings, topics.DOCS_REEXTRACT), []
    for key, value in events:
        producer.produce(
            name,
            key=key.encode(),
            value=value,
            on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
        )
        producer.poll(0)
    if producer.flush(30) or errors:
        raise RuntimeError(f"could not write to {name}: {errors[:3] or 'timed out'}")
