"""Upload plans: pre-signed URLs bound to one object key and one content length.

Small files get one PUT.  Files above the multipart threshold get a multipart upload with a
pre-signed URL per part; on confirm the gateway lists the parts and completes the upload, so
the browser never needs storage credentials or to build S3's completion XML.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.s3 import bucket_for
from ops.settings import Settings


def bucket_of(settings: Settings, created_at: datetime) -> str:
    return bucket_for(settings, created_at.year)  # the one naming rule (ops/s3.py)


def _expiry(settings: Settings) -> str:
    at = datetime.now(UTC) + timedelta(seconds=settings.upload_url_ttl_s)
    return at.isoformat(timespec="seconds")


def single_put_plan(
    s3: Any, settings: Settings, bucket: str, key: str, size: int, content_type: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ContentLength": size}
    headers = {"Content-Length": str(size)}
    if content_type:
        params["ContentType"] = content_type
        headers["Content-Type"] = content_type
    url = s3.generate_presigned_url(
        "put_object", Params=params, ExpiresIn=settings.upload_url_ttl_s
    )
    return {"method": "PUT", "url": url, "headers": headers, "expires_at": _expiry(settings)}


def part_sizes(size: int, part_size: int) -> list[int]:
    count = max(1, math.ceil(size / part_size))
    return [min(part_size, size - i * part_size) for i in range(count)]


def multipart_plan(
    s3: Any, settings: Settings, bucket: str, key: str, size: int, content_type: str | None
) -> dict[str, Any]:
    extra = {"ContentType": content_type} if content_type else {}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    parts = []
    for number, length in enumerate(part_sizes(size, settings.multipart_part_size), start=1):
        params = {
            "Bucket": bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": number,
            "ContentLength": length,
        }
        url = s3.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=settings.upload_url_ttl_s
        )
        parts.append({"part_number": number, "size": length, "url": url})
    return {
        "method": "MULTIPART",
        "upload_id": upload_id,
        "part_size": settings.multipart_part_size,
        "parts": parts,
        "expires_at": _expiry(settings),
        "complete": "PUT each part (keep no state), then POST the confirm-upload URL: "
        "the gateway completes the multipart upload",
    }


def complete_multipart(s3: Any, bucket: str, key: str, upload_id: str, expected: int) -> None:
    """Complete from the parts S3 holds; raises ValueError if any part is missing."""
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
    if len(listed) != expected:
        raise ValueError(f"{len(listed)} of {expected} parts uploaded")
    parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
