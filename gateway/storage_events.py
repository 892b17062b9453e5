"""Storage events: a document is 'uploaded' as soon as its bytes land, not only on confirm.

The role S3 event notifications play on AWS (README "Storage events").  Locally the SeaweedFS
filer reports every change through its metadata subscription (:mod:`ops.filer_meta`); this
module decides which changes are a document's upload landing and records them:

* **Validated.** Only a new file at a document's own upload key counts: ``<prefix>-YYYY``
  buckets of this deployment, the key a version-7 document id created in that year, the
  object (or, in our versioned buckets, one of its versions) neither a folder nor a delete
  marker.  Multipart parts live under ``.uploads/`` and never match, so a multipart upload
  counts once it completes.  Anything else is ignored.
* **Idempotent, never backwards.** The row moves requested → uploaded only from 'requested'
  and only when the stored size is the declared one; the 'uploaded' status event goes into
  the outbox in the same transaction (the gateway's relay publishes it, the hub streams it).
  A redelivered event, a second listener process, or a confirm that came first changes
  nothing; a confirm that comes later pins the version without announcing 'uploaded' again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from gateway import store
from ops.filer_meta import BUCKETS_DIR, MetaEvent
from ops.ids import created_at_of, parse_doc_id
from ops.kafka import topic
from ops.settings import Settings
from schemas import topics
from schemas.documents import DocsStatus
from schemas.enums import Status

DELETE_MARKER = "Seaweed-X-Amz-Delete-Marker"  # the extended attribute of a delete marker
_VERSIONS = ".versions"  # a versioned object's folder: <key>.versions/v_<version>


@dataclass(frozen=True)
class Landed:
    """A document's bytes are in storage: which document, how many bytes, when (filer time)."""

    doc_id: uuid.UUID
    bucket: str
    size: int
    at: datetime


def path_prefix(settings: Settings) -> str:
    """What to subscribe to: this deployment's buckets (``/buckets/<prefix>-``)."""
    return f"{BUCKETS_DIR}/{settings.s3.bucket_prefix}-"


def landed(settings: Settings, event: MetaEvent) -> Landed | None:
    """The upload this event reports, or None when it is not one (see the module doc)."""
    entry = event.new
    if entry is None or entry.is_directory or DELETE_MARKER in entry.extended:
        return None
    located = _bucket_and_key(event.new_directory, entry.name)
    if located is None:
        return None
    bucket, key = located
    year = _bucket_year(settings, bucket)
    try:
        doc_id = parse_doc_id(key)
    except ValueError:
        return None
    if year is None or str(doc_id) != key or created_at_of(doc_id).year != year:
        return None
    return Landed(doc_id, bucket, entry.size, datetime.fromtimestamp(event.ts_ns / 1e9, UTC))


def _bucket_and_key(directory: str, name: str) -> tuple[str, str] | None:
    """``/buckets/B`` + ``K`` (plain object) or ``/buckets/B/K.versions`` + ``v_…`` (a
    version of K); None for any other place."""
    if not directory.startswith(BUCKETS_DIR + "/"):
        return None
    parts = directory[len(BUCKETS_DIR) + 1 :].split("/")
    if len(parts) == 1:
        return parts[0], name
    if len(parts) == 2 and parts[1].endswith(_VERSIONS) and name.startswith("v_"):
        return parts[0], parts[1][: -len(_VERSIONS)]
    return None


def _bucket_year(settings: Settings, bucket: str) -> int | None:
    match = re.fullmatch(re.escape(settings.s3.bucket_prefix) + r"-(\d{4})", bucket)
    return int(match.group(1)) if match else None


async def record(conn: AsyncConnection[Any], settings: Settings, upload: Landed) -> bool:
    """Mark the document uploaded (True) or change nothing (False: not 'requested' any more,
    another size, or no such document)."""

    def status_event(tenant: str) -> store.OutboxEvent:
        status = DocsStatus(str(upload.doc_id), tenant, Status.UPLOADED, None, None, upload.at)
        name = topic(settings, topics.DOCS_STATUS)
        return store.OutboxEvent(name, status.doc_id, status.encode())

    return await store.mark_landed(conn, upload.doc_id, upload.size, upload.at, status_event)
