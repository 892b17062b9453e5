"""The stored bytes of a document: pinned at confirm, and only ever read back pinned.

Upload URLs stay valid for their whole lifetime, even after confirm, so a client could PUT
other bytes of the same length to the same key.  The year buckets are versioned: confirm
records the version it checked (size included), and extraction, scanners, ``/content`` and
replay read that version, so what was scanned is what is stored, forever.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from gateway import uploads
from gateway.store import PinnedObject
from ops.settings import Settings

_MISSING = ("404", "NoSuchKey", "NotFound")


class StorageNotVersioned(RuntimeError):
    """The bucket keeps no versions, so nothing could be pinned (a provisioning error)."""


def pin_upload(
    s3: Any, settings: Settings, bucket: str, key: str, doc: dict[str, Any]
) -> PinnedObject | None:
    """Finish a multipart upload if there is one, then pin the stored version (None when
    nothing is stored yet).  Blocking: run it in a thread."""
    if doc.get("upload_id"):
        parts = len(uploads.part_sizes(doc["file_size"], settings.multipart_part_size))
        try:
            uploads.complete_multipart(s3, bucket, key, doc["upload_id"], parts)
        except ValueError:
            return None
        except s3.exceptions.NoSuchUpload:
            pass  # completed by an earlier confirm; HEAD below tells the truth
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    version = head.get("VersionId")
    if not version or version == "null":
        raise StorageNotVersioned(
            f"bucket {bucket} keeps no object versions; run `intellidox bootstrap seaweedfs`"
        )
    return PinnedObject(bucket, key, version, int(head["ContentLength"]))


def content_url(s3: Any, settings: Settings, bucket: str, doc: dict[str, Any]) -> str:
    """A short-lived GET of exactly the pinned bytes, saved under the document's name."""
    name = urllib.parse.quote(doc["file_name"], safe="")
    params = {
        "Bucket": bucket,
        "Key": str(doc["id"]),
        "VersionId": doc["object_version"],
        "ResponseContentDisposition": f"attachment; filename*=UTF-8''{name}",
    }
    url: str = s3.generate_presigned_url(
        "get_object", Params=params, ExpiresIn=settings.content_url_ttl_s
    )
    return url
