"""The worker follows ``extractor.scripts`` and swaps the active extractor script live.

On an ``active`` record it downloads the version from S3 once (cached under
``<var_dir>/extractor-scripts``), checks its SHA-256, then swaps ``context()``'s script and
version in one step.  A document reads the pair once when its extraction starts, so documents
in flight finish with the version they began with and the next ones use the new one.
Extraction waits for :data:`loaded` (the topic read to its end) so that a restarted worker
never runs a stale version first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ops import extractor_store as store
from ops.backoff import Backoff, Rule, retrying
from ops.kafka import topic
from ops.kafka_read import aio_ends
from schemas import topics
from schemas.events import decode_as
from schemas.scripts import ACTIVE_KEY, ExtractorScript
from streams import metrics
from streams.app import app, settings
from streams.context import DEFAULT_SCRIPT, DEFAULT_VERSION, WorkerContext, context
from streams.follow import follow_from_start

log = logging.getLogger(__name__)
loaded = asyncio.Event()  # set once the compacted history has been read and applied
LOAD_WAIT_S = 30.0
FETCH = Backoff(attempts=5, base_s=0.4, cap_s=5.0)  # S3 hiccups fetching a script


class IntegrityError(ValueError):
    """The stored script does not match the SHA-256 it was announced with."""


async def wait_loaded() -> None:
    if loaded.is_set():
        return
    try:
        await asyncio.wait_for(loaded.wait(), LOAD_WAIT_S)
    except TimeoutError:
        log.warning("extractor scripts not loaded after %.0fs; using what is known", LOAD_WAIT_S)


def cache_dir(ctx: WorkerContext) -> Path:
    return ctx.settings.var_dir / "extractor-scripts"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# What a published version looks like (ops/extractor_store.py): every field of an
# extractor.scripts record is checked before it names a file or an object.
VERSION = re.compile(r"v[1-9][0-9]{0,8}-[0-9a-f]{12}", re.ASCII)
SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class InvalidScriptRecord(ValueError):
    """A record on extractor.scripts that names something it must not."""


def check_reference(
    version: str, object_key: str | None, sha256: str | None
) -> tuple[str, str] | None:
    """(object key, sha256) of a published version, None for the built-in default."""
    if version == DEFAULT_VERSION and object_key is None:
        return None
    if not VERSION.fullmatch(version):
        raise InvalidScriptRecord(f"script version {version[:80]!r} is not vN-<12 hex>")
    if object_key != f"extractors/{version}.py":
        raise InvalidScriptRecord(f"object key {str(object_key)[:120]!r} is not {version}'s")
    if sha256 is None or not SHA256.fullmatch(sha256):
        raise InvalidScriptRecord(f"sha256 {str(sha256)[:80]!r} is not 64 hex digits")
    return object_key, sha256


def fetch(ctx: WorkerContext, version: str, object_key: str | None, sha256: str | None) -> Path:
    """The local file of a version (downloaded once, verified every time it is taken)."""
    checked = check_reference(version, object_key, sha256)
    if checked is None:
        return DEFAULT_SCRIPT
    object_key, sha256 = checked
    path = cache_dir(ctx) / f"{version}.py"
    if path.exists() and _digest(path) == sha256:
        return path
    data = store.get_script(ctx.s3, ctx.settings, object_key)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityError(f"{object_key} does not match its announced sha256 {sha256[:12]}…")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


async def script_of(
    ctx: WorkerContext, version: str, object_key: str | None, sha256: str | None
) -> tuple[Path, str]:
    """(path, version), downloading with retries when S3 hiccups."""

    def retried(tries: int, pause: float, exc: BaseException) -> None:
        log.warning("fetching script %s failed (try %d); retrying: %s", version, tries, exc)

    rules: list[Rule] = [((IntegrityError, InvalidScriptRecord), None), (Exception, FETCH)]
    path = await retrying(
        lambda: asyncio.to_thread(fetch, ctx, version, object_key, sha256), rules, retried
    )
    return path, version


async def apply_active(ctx: WorkerContext, record: ExtractorScript) -> None:
    """Make ``record`` (an ``active`` record) the script extraction uses from now on."""
    version = record.version
    if version == ctx.script_version:
        return
    try:
        path, _ = await script_of(ctx, version, record.object_key, record.sha256)
    except Exception:
        log.exception("cannot use extractor script %s; keeping %s", version, ctx.script_version)
        metrics.SCRIPT_SWAP_FAILURES.inc()
        return
    ctx.use_script(path, version)
    metrics.SCRIPT_SWAPS.inc()
    log.info("extractor script is now %s", version)


def latest_active(messages: list[Any]) -> ExtractorScript | None:
    """The last ``active`` record among a batch of messages, if any."""
    found = None
    for message in messages:
        if message.key == ACTIVE_KEY.encode() and message.value:
            try:
                found = decode_as(ExtractorScript, message.value)
            except ValueError:
                log.warning("undecodable extractor.scripts record at %d", message.offset)
    return found


@app.task
async def follow_scripts() -> None:
    """Read the compacted topic from the start, apply the active record, then follow it."""
    await follow_from_start(settings, topic(settings, topics.EXTRACTOR_SCRIPTS), _follow)


async def _follow(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    ends = await aio_ends(consumer, partitions)
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        record = latest_active([m for batch in batches.values() for m in batch])
        if record is not None:
            await apply_active(context(), record)
        for tp in partitions if not loaded.is_set() else ():
            ends.at((tp.topic, tp.partition), await consumer.position(tp))
        if ends.reached:
            loaded.set()
