"""SeaweedFS S3: presigned PUT and GET over plain HTTP, as browsers and scanners use them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from ops.s3 import bucket_for
from ops.services.seaweedfs import SeaweedFS, s3_identities
from ops.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BODY = b"%PDF-1.7\nintellidox presigned body\n"


def _put(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return err.code, b""


def _presigned_put(s3: S3Client, bucket: str, key: str, length: int, expires: int = 60) -> str:
    # ContentLength is signed: the URL only accepts a body of exactly this many bytes.
    params = {"Bucket": bucket, "Key": key, "ContentLength": length}
    return s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)


def test_ports_start_with_s3_and_avoid_common_defaults() -> None:
    ports = SeaweedFS(Settings()).ports()
    assert ports[0] == Settings().s3.port
    assert len(set(ports)) == len(ports)
    assert not {8080, 8333, 8888, 9333, 9340, 7333, 23646, 18080} & set(ports)


def test_the_s3_identity_is_our_access_key_with_every_action() -> None:
    s3 = Settings().s3.with_overrides(access_key="ak", secret_key="sk")
    (identity,) = json.loads(s3_identities(Settings(s3=s3)))["identities"]
    assert identity["credentials"] == [{"accessKey": "ak", "secretKey": "sk"}]
    assert set(identity["actions"]) == {"Admin", "Read", "List", "Tagging", "Write"}


@pytest.mark.integration
def test_presigned_put_then_get(s3: S3Client, s3_bucket: str) -> None:
    assert _put(_presigned_put(s3, s3_bucket, "doc-1", len(BODY)), BODY) == 200
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "doc-1"}, ExpiresIn=60
    )
    assert _get(get_url) == (200, BODY)


@pytest.mark.integration
def test_presigned_put_rejects_a_bigger_body(s3: S3Client, s3_bucket: str) -> None:
    url = _presigned_put(s3, s3_bucket, "doc-2", len(BODY))
    assert _put(url, BODY + b"more") == 403
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=s3_bucket, Key="doc-2")


@pytest.mark.integration
def test_expired_presigned_url_is_rejected(s3: S3Client, s3_bucket: str) -> None:
    url = _presigned_put(s3, s3_bucket, "doc-3", len(BODY), expires=1)
    time.sleep(2.1)
    assert _put(url, BODY) == 403
    s3.put_object(Bucket=s3_bucket, Key="doc-4", Body=BODY)
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "doc-4"}, ExpiresIn=1
    )
    time.sleep(2.1)
    assert _get(get_url)[0] == 403


@pytest.mark.integration
def test_year_buckets_exist(s3: S3Client, settings: Settings) -> None:
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    year = time.gmtime().tm_year
    assert {bucket_for(settings, year), bucket_for(settings, year + 1)} <= names
