"""S3 fixtures: a session client for the live store and a throw-away bucket per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from ops.s3 import s3_client
from ops.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


@pytest.fixture(scope="session")
def s3(settings: Settings) -> S3Client:
    client = s3_client(settings)
    probe = s3_client(settings, connect_timeout=2, read_timeout=5, attempts=1)
    try:
        probe.list_buckets()
    except (BotoCoreError, ClientError) as exc:
        pytest.fail(
            f"S3 is not reachable at {settings.s3.endpoint} ({exc}); run `intellidox up seaweedfs`",
            pytrace=False,
        )
    return client


@pytest.fixture
def s3_bucket(s3: S3Client, run_id: str) -> Iterator[str]:
    """A fresh bucket named ``run_id``; emptied and deleted afterwards."""
    s3.create_bucket(Bucket=run_id)
    try:
        yield run_id
    finally:
        _delete_bucket(s3, run_id)


def _delete_bucket(s3: S3Client, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys: list[ObjectIdentifierTypeDef] = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
