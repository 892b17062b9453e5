"""Which filer events are a document's upload landing (pure logic; the live path is in
test_storage_events.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.storage_events import DELETE_MARKER, Landed, landed, path_prefix
from gateway.storage_listener import Listener, create_app
from ops.filer_meta import FilerEntry, MetaEvent
from ops.ids import uuid7
from ops.settings import PostgresSettings, S3Settings, Settings

SETTINGS = Settings(s3=S3Settings(bucket_prefix="idx"))
DOC = uuid7(int(datetime(2026, 5, 1, tzinfo=UTC).timestamp() * 1000))
TS_NS = 1_795_867_958_523_967_326


def event(directory: str, name: str, size: int = 5, **entry: object) -> MetaEvent:
    new = FilerEntry(name, size=size, **entry)  # type: ignore[arg-type]
    return MetaEvent(directory, TS_NS, None, new, directory)


def test_a_new_version_of_a_documents_key_has_landed() -> None:
    found = landed(SETTINGS, event(f"/buckets/idx-2026/{DOC}.versions", "v_6713cb9b"))
    assert found == Landed(DOC, "idx-2026", 5, datetime.fromtimestamp(TS_NS / 1e9, UTC))


def test_a_plain_object_in_an_unversioned_bucket_has_landed_too() -> None:
    assert landed(SETTINGS, event("/buckets/idx-2026", str(DOC))) is not None


def test_a_renamed_entry_counts_where_it_lands() -> None:
    moved = MetaEvent("/buckets/idx-2026/.uploads/u1", TS_NS, FilerEntry("x"), FilerEntry(str(DOC)))
    assert landed(SETTINGS, moved) is None
    moved = MetaEvent(
        "/elsewhere", TS_NS, FilerEntry("x"), FilerEntry(str(DOC)), "/buckets/idx-2026"
    )
    assert landed(SETTINGS, moved) is not None


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        (f"/buckets/idx-2027/{DOC}.versions", "v_1"),  # the id was made in 2026
        (f"/buckets/other-2026/{DOC}.versions", "v_1"),  # another deployment's bucket
        (f"/buckets/idx-scripts/{DOC}.versions", "v_1"),  # not a year bucket
        (f"/buckets/idx-2026x/{DOC}.versions", "v_1"),
        ("/buckets/idx-2026/.uploads/abc", "0001_x.part"),  # a multipart part
        (f"/buckets/idx-2026/{DOC}.versions", "x_1"),  # not a version file
        (f"/buckets/idx-2026/{DOC}", "v_1"),  # a folder named like the key
        (f"/buckets/idx-2026/a/{DOC}.versions", "v_1"),  # deeper
        ("/buckets/idx-2026", f"{DOC}.bak"),
        ("/buckets/idx-2026", str(DOC).upper()),  # not the canonical key
        ("/buckets/idx-2026", str(uuid.uuid4())),  # not a version-7 id
        ("/topics/idx-2026", str(DOC)),  # not a bucket
        ("/buckets", "idx-2026"),  # the bucket itself
    ],
)
def test_anything_else_is_ignored(directory: str, name: str) -> None:
    assert landed(SETTINGS, event(directory, name)) is None


def test_folders_deletions_and_delete_markers_are_not_uploads() -> None:
    versions = f"/buckets/idx-2026/{DOC}.versions"
    assert (
        landed(SETTINGS, event("/buckets/idx-2026", f"{DOC}.versions", is_directory=True)) is None
    )
    assert landed(SETTINGS, MetaEvent(versions, TS_NS, FilerEntry("v_1"), None)) is None
    marker = event(versions, "v_2", size=0, extended=frozenset({DELETE_MARKER}))
    assert landed(SETTINGS, marker) is None


def test_the_subscription_covers_only_this_deployments_buckets() -> None:
    assert path_prefix(SETTINGS) == "/buckets/idx-"


def test_outside_dev_mode_the_listener_refuses_a_filer_without_mutual_tls(tmp_path: Path) -> None:
    production = Settings(
        var_dir=tmp_path, postgres=PostgresSettings(password="p"), metrics_token="m"
    )
    with pytest.raises(SystemExit, match="mutual TLS"):
        create_app(production)
    create_app(Settings(var_dir=tmp_path, dev_mode=True))  # the local runtime may, for now


async def test_an_event_with_an_impossible_time_is_ignored_not_fatal() -> None:
    listener = Listener(SETTINGS, pool=None)  # type: ignore[arg-type]  # never reached
    impossible = MetaEvent(f"/buckets/idx-2026/{DOC}.versions", 10**30, None, FilerEntry("v_1"))
    await listener.apply(impossible)
