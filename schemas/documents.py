"""Typed records of the document topics: ``docs.requested``, ``docs.confirmed``,
``docs.metadata``, ``docs.status`` and ``docs.reextract`` (key: the document id, for all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from schemas.record import Record

# The extractor script's findings: free-form key-values (the script decides the keys); the
# schema allows null, boolean, long, double and string values.
MetaValue = bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class DocsRequested(Record):
    """A client asked to upload a document."""

    SCHEMA: ClassVar[str] = "docs_requested"

    doc_id: str
    tenant: str
    file_name: str
    file_size: int  # declared, in bytes
    content_type: str | None
    sha256: str | None  # the hash the client declared, if any
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DocsConfirmed(Record):
    """The object is in the store with the declared size, its version pinned."""

    SCHEMA: ClassVar[str] = "docs_confirmed"

    doc_id: str
    tenant: str
    file_name: str
    file_size: int  # stored, in bytes
    content_type: str | None
    bucket: str
    key: str  # the object key (the record's Kafka key is ``doc_id``)
    created_at: datetime
    uploaded_at: datetime
    version_id: str | None = None  # None for records written before versions were pinned


@dataclass(frozen=True, slots=True)
class DocsMetadata(Record):
    """What extraction found; ``failed`` when the object itself could not be read."""

    SCHEMA: ClassVar[str] = "docs_metadata"

    doc_id: str
    tenant: str
    sha256: str | None
    file_size: int
    file_type: str | None
    mime_type: str | None
    meta: dict[str, MetaValue]  # free-form: whatever the script found
    script_version: str | None
    duration_ms: int
    error: str | None
    failed: bool
    at: datetime
    also_types: tuple[str, ...] = ()  # other types readers find in the bytes (a polyglot)


@dataclass(frozen=True, slots=True)
class DocsStatus(Record):
    """A document's processing status changed (a :class:`schemas.enums.Status` value)."""

    SCHEMA: ClassVar[str] = "docs_status"

    doc_id: str
    tenant: str
    status: str  # a Status value; plain text on the wire so a new status never breaks a reader
    reason: str | None
    expected: int | None  # how many verdicts the document waits for, once known
    at: datetime


@dataclass(frozen=True, slots=True)
class DocsReextract(Record):
    """Run extraction again on a stored document (no new scan); no script version: the one
    active when the worker takes the request."""

    SCHEMA: ClassVar[str] = "docs_reextract"

    doc_id: str
    tenant: str
    file_name: str
    file_size: int
    content_type: str | None
    bucket: str
    key: str
    script_version: str | None
    script_key: str | None
    script_sha256: str | None
    requested_at: datetime
    version_id: str | None = None


__all__ = [
    "DocsConfirmed",
    "DocsMetadata",
    "DocsReextract",
    "DocsRequested",
    "DocsStatus",
    "MetaValue",
]
