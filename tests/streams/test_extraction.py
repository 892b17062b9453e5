"""Extraction's download retries, in-process (no object store): storage away is waited out
however long it lasts; any other failure gets its few tries, then fails the document."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ops.backoff import GaveUp
from ops.settings import get_settings
from streams import extraction
from streams.context import WorkerContext
from streams.objects import ObjectRef

SOURCE = ObjectRef("b-2026", "k", "v1")


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[Exception]:
    """Failures the next downloads raise, in order; then a download succeeds."""
    failures: list[Exception] = []

    def download(_s3: Any, source: ObjectRef, _directory: Path, _size: int | None) -> str:
        if failures:
            raise failures.pop(0)
        return f"downloaded {source.key}"

    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(extraction, "download", download)
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    return failures


async def test_storage_away_is_waited_out_however_many_tries_it_takes(
    downloads: list[Exception], tmp_path: Path
) -> None:
    downloads.extend([ConnectionError("refused")] * 30)
    ctx = WorkerContext(get_settings(), s3=None)
    got = await extraction.download_with_retries(ctx, SOURCE, tmp_path)
    assert got == "downloaded k" and not downloads


async def test_another_failure_gets_its_few_tries_then_fails(
    downloads: list[Exception], tmp_path: Path
) -> None:
    downloads.extend([KeyError("NoSuchVersion")] * 10)
    ctx = WorkerContext(get_settings(), s3=None)
    with pytest.raises(GaveUp, match=r"NoSuchVersion.*gave up after 4 tries"):
        await extraction.download_with_retries(ctx, SOURCE, tmp_path)
    assert len(downloads) == 6  # four tried
