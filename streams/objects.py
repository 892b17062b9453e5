"""Where a document's bytes are, checked: events from a topic are untrusted input.

A ``docs.confirmed`` or ``docs.reextract`` record names a bucket, a key and the object version
pinned at confirm.  Before anything is read, the bucket must be one of our year buckets, the
key must be the document's own id, and the version must look like a version; otherwise the
event is poison (the dead-letter topic gets it with the reason).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from ops.settings import Settings
from schemas.documents import DocsConfirmed, DocsReextract

_VERSION = re.compile(r"[A-Za-z0-9._\-]{1,128}", re.ASCII)
_YEAR = re.compile(r"[0-9]{4}", re.ASCII)


class InvalidObjectRef(ValueError):
    """The event points somewhere it must not."""


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None  # None only for documents confirmed before versions were pinned

    def get_params(self) -> dict[str, str]:
        params = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id is not None:
            params["VersionId"] = self.version_id
        return params

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key}@{self.version_id or 'unpinned'}"


def object_ref(settings: Settings, record: DocsConfirmed | DocsReextract) -> ObjectRef:
    """The checked location of ``record``'s bytes; raises :class:`InvalidObjectRef`."""
    doc_id, bucket, key = record.doc_id, record.bucket, record.key
    try:
        canonical = str(uuid.UUID(str(doc_id)))
    except ValueError:
        raise InvalidObjectRef(f"doc_id {doc_id!r} is not a UUID") from None
    if key != canonical:
        raise InvalidObjectRef(f"key {key!r} is not the document's id {canonical}")
    prefix = settings.s3.bucket_prefix + "-"
    if not isinstance(bucket, str) or not (
        bucket.startswith(prefix) and _YEAR.fullmatch(bucket[len(prefix) :])
    ):
        raise InvalidObjectRef(f"bucket {bucket!r} is not one of the {prefix}YYYY buckets")
    version = record.version_id
    if version is not None and not _VERSION.fullmatch(str(version)):
        raise InvalidObjectRef(f"version_id {version!r} is not an object version")
    return ObjectRef(bucket, canonical, version)


def is_storage_outage(exc: BaseException) -> bool:
    """Storage is away or overloaded (retry until it is back), not 'this object is bad'."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from urllib3.exceptions import ProtocolError

    outages = (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
        ProtocolError,
        ConnectionError,
    )
    if isinstance(exc, outages):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    return False
