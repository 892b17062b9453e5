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


def test_the_file_is_written_alongside_and_complete(tmp_path: Path) -> None:
    chunks = [os.urandom(fetch.STREAM_CHUNK) for _ in range(fetch.WRITE_AHEAD * 3)]
    sink = fetch._Sink(tmp_path / "object")
    for chunk in chunks:
        sink.feed(chunk)
    got = sink.result()
    data = b"".join(chunks)
    assert got.path.read_bytes() == data and got.sha256 == hashlib.sha256(data).hexdigest()


def test_a_file_that_cannot_be_written_is_an_error_not_a_hang(tmp_path: Path) -> None:
    sink = fetch._Sink(tmp_path / "missing" / "object")  # no such directory
    with pytest.raises(OSError, match="could not write"):
        for _ in range(fetch.WRITE_AHEAD * 3):  # more than the queue holds
            sink.feed(b"x" * 1024)
        sink.result()
