"""The orchestrator's reuse and fan-out, in-process with fakes (no Kafka, no stores): the
same bytes seen before get the earlier conclusive verdicts copied, marked reused, and only
the scanners without one are asked; a verdict made with old signatures is reused marked stale
while no newer one exists."""

from __future__ import annotations

import dataclasses
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops.ids import uuid7
from ops.settings import get_settings
from schemas.documents import DocsConfirmed, DocsMetadata
from schemas.records import ScannerHeartbeat, ScanVerdict
from schemas.scans import ScanRequest
from streams import orchestrator, registry
from streams.context import WorkerContext

NOW = datetime.now(UTC).replace(microsecond=0)
SHA = "ab" * 32


def beat(name: str, signatures: str = "2") -> ScannerHeartbeat:
    return ScannerHeartbeat(name, "V", "Linux", "h", "h/1", "1", signatures, 30.0, None, NOW)


def row(doc: uuid.UUID, scanner: str, verdict: str, signatures: str = "2") -> dict[str, Any]:
    at = NOW.replace(tzinfo=None)  # as Cassandra gives it back
    return {
        "doc_id": doc,
        "scanner": scanner,
        "vendor": "V",
        "verdict": verdict,
        "scan_result": f"{verdict} by {scanner}",
        "engine_version": "1",
        "signatures_version": signatures,
        "start_at": at,
        "end_at": at,
        "reused_from": None,
    }


class FakePostgres:
    """Answers the same-content query with ``earlier`` (newest first)."""

    def __init__(self, earlier: list[uuid.UUID]) -> None:
        self.earlier = earlier

    @asynccontextmanager
    async def connection(self) -> Any:
        earlier = self.earlier

        class Cursor:
            async def fetchall(self) -> list[tuple[uuid.UUID]]:
                return [(doc,) for doc in earlier]

        class Connection:
            async def execute(self, sql: str, params: tuple[Any, ...]) -> Cursor:
                assert "sha256 = %s" in sql and SHA in params
                return Cursor()

        yield Connection()


class FakeCassandra:
    def __init__(self, rows: dict[uuid.UUID, list[dict[str, Any]]]) -> None:
        self.rows = rows
        self.session = self

    def prepared(self, query: str) -> str:
        return query

    def execute(self, _query: str, params: tuple[uuid.UUID]) -> list[dict[str, Any]]:
        return self.rows.get(params[0], [])


class FakeS3:
    def generate_presigned_url(self, _op: str, **kwargs: Any) -> str:
        params = kwargs["Params"]
        return f"http://s3/{params['Bucket']}/{params['Key']}?ttl={kwargs['ExpiresIn']}"


class Sent:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.values.append(value)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> tuple[Sent, Sent]:
    verdicts, requests = Sent(), Sent()
    monkeypatch.setattr(orchestrator, "verdicts_topic", verdicts)
    monkeypatch.setattr(orchestrator, "requests_topic", requests)
    return verdicts, requests


def live(monkeypatch: pytest.MonkeyPatch, *beats: ScannerHeartbeat) -> None:
    monkeypatch.setattr(registry, "scanners", {b.name: b for b in beats})

    async def alive(_ctx: WorkerContext) -> list[ScannerHeartbeat]:
        return list(beats)

    monkeypatch.setattr(orchestrator, "live_scanners", alive)


def documents(earlier: dict[uuid.UUID, list[dict[str, Any]]]) -> tuple[WorkerContext, Any, Any]:
    settings = get_settings()
    ctx = WorkerContext(settings, FakeS3())
    ctx._pool = FakePostgres(list(earlier))  # type: ignore[assignment]
    ctx._cassandra = FakeCassandra(earlier)  # type: ignore[assignment]
    doc_id = str(uuid7())
    bucket = f"{settings.s3.bucket_prefix}-{NOW.year}"
    confirmed = DocsConfirmed(doc_id, "t", "a.pdf", 10, None, bucket, doc_id, NOW, NOW)
    metadata = DocsMetadata(doc_id, "t", SHA, 10, "pdf", None, {}, "1", 5, None, False, NOW)
    return ctx, confirmed, metadata


async def test_same_bytes_reuse_conclusive_verdicts_and_ask_only_the_other_scanners(
    monkeypatch: pytest.MonkeyPatch, sent: tuple[Sent, Sent]
) -> None:
    earlier = uuid.uuid4()
    live(monkeypatch, beat("clamav"), beat("yara"), beat("sim"))
    rows = [row(earlier, "clamav", "malicious"), row(earlier, "yara", "timeout")]
    ctx, confirmed, metadata = documents({earlier: rows})
    await orchestrator.fan_out(ctx, confirmed, metadata)
    verdicts, requests = sent
    [reused] = [ScanVerdict.decode(v) for v in verdicts.values]
    assert (reused.doc_id, reused.scanner, reused.verdict) == (
        confirmed.doc_id,
        "clamav",
        "malicious",
    )
    assert reused.reused_from == str(earlier) and not reused.signatures_stale
    [request] = [ScanRequest.decode(v) for v in requests.values]
    assert sorted(s.name for s in request.scanners) == ["sim", "yara"]  # a timeout is not reused
    assert request.reused == ("clamav",) and request.reused_from == str(earlier)
    assert request.sha256 == SHA and confirmed.doc_id in request.download_url


async def test_old_signatures_are_reused_marked_stale_only_while_no_newer_verdict_exists(
    monkeypatch: pytest.MonkeyPatch, sent: tuple[Sent, Sent]
) -> None:
    newest, older = uuid.uuid4(), uuid.uuid4()
    live(monkeypatch, beat("clamav", signatures="3"), beat("yara", signatures="3"))
    ctx, confirmed, metadata = documents(
        {
            newest: [row(newest, "clamav", "clean", "2"), row(newest, "yara", "clean", "2")],
            older: [row(older, "clamav", "malicious", "3")],
        }
    )
    await orchestrator.fan_out(ctx, confirmed, metadata)
    reused = {v.scanner: v for v in map(ScanVerdict.decode, sent[0].values)}
    assert (reused["clamav"].verdict, reused["clamav"].signatures_stale) == ("malicious", False)
    assert (reused["yara"].verdict, reused["yara"].signatures_stale) == ("clean", True)
    [request] = [ScanRequest.decode(v) for v in sent[1].values]
    assert request.scanners == ()  # every scanner has a verdict to reuse


async def test_new_bytes_are_sent_to_every_live_scanner_with_its_own_deadline(
    monkeypatch: pytest.MonkeyPatch, sent: tuple[Sent, Sent]
) -> None:
    live(monkeypatch, beat("clamav"), beat("yara"))
    ctx, confirmed, metadata = documents({})
    await orchestrator.fan_out(ctx, confirmed, metadata)
    assert sent[0].values == []
    [request] = [ScanRequest.decode(v) for v in sent[1].values]
    assert [s.name for s in request.scanners] == ["clamav", "yara"] and request.reused == ()
    for expected in request.scanners:
        assert expected.deadline_at - request.requested_at == timedelta(seconds=30)


async def test_a_scanner_that_does_not_accept_the_type_is_answered_unsupported_not_asked(
    monkeypatch: pytest.MonkeyPatch, sent: tuple[Sent, Sent]
) -> None:
    earlier = uuid.uuid4()
    pdf_only = dataclasses.replace(beat("pdf-active"), accepts=("pdf",))
    widened = beat("office-macros")  # took only Office files when the earlier one came
    live(monkeypatch, beat("clamav"), pdf_only, widened)
    given = {**row(earlier, "office-macros", "unsupported"), "engine_version": ""}
    ctx, confirmed, metadata = documents({earlier: [given, row(earlier, "pdf-active", "clean")]})
    await orchestrator.fan_out(ctx, confirmed, dataclasses.replace(metadata, file_type="text"))
    [answer] = [ScanVerdict.decode(v) for v in sent[0].values]
    assert (answer.scanner, answer.verdict, answer.reused_from) == (
        "pdf-active",
        "unsupported",
        None,
    )
    assert answer.result == "text is not a type pdf-active accepts (pdf)"
    [request] = [ScanRequest.decode(v) for v in sent[1].values]
    assert [s.name for s in request.scanners] == ["clamav", "office-macros"]
    assert request.unsupported == ("pdf-active",) and request.reused == ()
