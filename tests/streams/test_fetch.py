"""Reading a pinned object: whole, hashed, and exactly its pinned size."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from streams import fetch
from streams.objects import ObjectRef

pytestmark = pytest.mark.integration


@pytest.fixture
def stored(s3: Any, s3_bucket: str) -> tuple[ObjectRef, bytes]:
    data = os.urandom(3 * fetch.STREAM_CHUNK + 12345)  # several chunks, the last one short
    put = s3.put_object(Bucket=s3_bucket, Key="object", Body=data)
    return ObjectRef(s3_bucket, "object", put.get("VersionId")), data


def test_an_object_arrives_whole_and_hashed(
    s3: Any, stored: tuple[ObjectRef, bytes], tmp_path: Path
) -> None:
    source, data = stored
    got = fetch.download(s3, source, tmp_path, size=len(data))
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.size == len(data)
    assert got.path.read_bytes() == data and got.head == data[: len(got.head)]


def test_an_unpinned_size_is_not_checked(
    s3: Any, stored: tuple[ObjectRef, bytes], tmp_path: Path
) -> None:
    source, data = stored
    got = fetch.download(s3, source, tmp_path)  # documents confirmed before pinning
    assert got.sha256 == hashlib.sha256(data).hexdigest()


def test_a_size_that_does_not_match_is_an_error(
    s3: Any, stored: tuple[ObjectRef, bytes], tmp_path: Path
) -> None:
    source, data = stored
    with pytest.raises(OSError, match=r"pinned size|bytes"):
        fetch.download(s3, source, tmp_path, size=len(data) + 1)
