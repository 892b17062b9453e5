"""The S3 client every component uses (gateway, scanners, tests), configured for SeaweedFS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from ops.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


def s3_client(
    settings: Settings, connect_timeout: float = 5, read_timeout: float = 60, attempts: int = 3
) -> S3Client:
    config = Config(
        signature_version="s3v4",
        region_name=settings.s3.region,
        s3={"addressing_style": "path"},  # no per-bucket DNS names on 127.0.0.1
        # boto3 >= 1.36 adds CRC checksums to every PUT by default; SeaweedFS and most other
        # S3 implementations do not handle them, so only send them when an API requires it.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=settings.s3.endpoint,
        aws_access_key_id=settings.s3.access_key,
        aws_secret_access_key=settings.s3.secret_key,
        config=config,
    )


def bucket_for(settings: Settings, year: int) -> str:
    """Documents are kept in one bucket per year: ``<prefix>-YYYY``."""
    return f"{settings.s3.bucket_prefix}-{year:04d}"


def drop_bucket(client: S3Client, bucket: str) -> None:
    """Delete a bucket with everything in it: every object version, delete marker and
    unfinished multipart upload (S3 refuses to delete a bucket that holds any)."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for listed in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
        objects: list[ObjectIdentifierTypeDef] = [
            {"Key": o["Key"], "VersionId": o["VersionId"]} for o in versions
        ]
        if objects:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    client.delete_bucket(Bucket=bucket)
