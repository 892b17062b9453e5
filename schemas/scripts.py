"""The typed record of ``extractor.scripts`` (compacted).  Key ``version:<v>``: one published
version; key ``active``: the version workers run, with the ones active before it (newest last)
for rollback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from schemas.record import Record

ACTIVE_KEY = "active"


def version_key(version: str) -> str:
    return f"version:{version}"


@dataclass(frozen=True, slots=True)
class ExtractorScript(Record):
    SCHEMA: ClassVar[str] = "extractor_script"

    version: str  # v<N>-<sha256 prefix>, or default-1 for the built-in script
    object_key: str | None  # in the <s3_bucket_prefix>-scripts bucket; None: built in
    sha256: str | None
    size: int
    published_at: datetime
    activated_at: datetime | None = None
    previous_version: str | None = None
    history: tuple[str, ...] = ()
    note: str | None = None

    @property
    def kafka_key(self) -> bytes:
        return version_key(self.version).encode()
