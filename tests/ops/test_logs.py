"""Log lines are JSON with the document's context, and carry no secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from confluent_kafka import Producer
from hypothesis import given
from hypothesis import strategies as st

from ops.kafka import producer_config, topic
from ops.logs import (
    _ANY_PATTERN,
    _PATTERNS,
    JsonFormatter,
    Redactor,
    log_context,
    logging_config,
    redact,
    secret_values,
    setup_logging,
)
from ops.settings import KafkaSettings, Settings
from schemas import topics
from tests.gateway.client import Api
from tests.plugins.pipeline import Pipeline


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(Redactor(("the-kafka-password", "idx-secret-api-key")))
    logger = logging.getLogger("intellidox.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def presigned_url() -> str:
    s3 = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:8333",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )
    return str(
        s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    )


def test_a_line_carries_the_fixed_fields_the_context_and_extras(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with log_context(stage="extraction", doc_id="d-1", topic="docs.confirmed", partition=3):
        with log_context(offset=41, tenant="acme"):
            logger.info("extracted: %s", "pdf", extra={"duration_ms": 12})
        logger.warning("after the inner block")
    logger.info("outside")
    first, second, third = lines(stream)
    assert first["message"] == "extracted: pdf" and first["level"] == "INFO"
    assert (first["process"], first["logger"]) == ("test", "intellidox.test.logs")
    assert {k: first[k] for k in ("stage", "doc_id", "tenant", "topic", "partition", "offset")} == {
        "stage": "extraction",
        "doc_id": "d-1",
        "tenant": "acme",
        "topic": "docs.confirmed",
        "partition": 3,
        "offset": 41,
    }
    assert first["duration_ms"] == 12 and str(first["time"]).endswith("+00:00")
    assert second["doc_id"] == "d-1" and "offset" not in second
    assert "doc_id" not in third


def test_presigned_urls_and_secrets_are_scrubbed_in_messages_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    url = presigned_url()
    assert "X-Amz-Signature=" in url
    logger.info("fetching %s", url)
    logger.info("sasl.password=the-kafka-password and key idx-secret-api-key")
    try:
        raise OSError(f"could not GET {url}: Authorization: Bearer abc.def-ghi")
    except OSError:
        logger.exception("download failed", extra={"url": url})
    text = stream.getvalue()
    for leak in ("X-Amz-Signature", "Signature=", "X-Amz-Credential", "AKIDEXAMPLE"):
        assert leak not in text
    assert "the-kafka-password" not in text and "idx-secret-api-key" not in text
    assert "abc.def-ghi" not in text
    fetching, password, failed = lines(stream)
    assert fetching["message"] == "fetching http://127.0.0.1:8333/b/k?[redacted]"
    assert password["message"] == "sasl.password=[redacted] and key [redacted]"
    assert "OSError" in str(failed["exception"]) and "[redacted]" in str(failed["exception"])


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("postgresql://intellidox:pg-pass-123@127.0.0.1/db", "pg-pass-123"),
        ("host=x password=pg-pass-123 dbname=y", "pg-pass-123"),
        ('{"api_key": "idx-abcdef"}', "idx-abcdef"),
        ("X-API-Key: idx-abcdef", "idx-abcdef"),
        ("events?token=eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("AWS4-HMAC-SHA256 Credential=AKID/2025, Signature=0123abcd", "0123abcd"),
        ("https://s3/b/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=fe12", "fe12"),
    ],
)
def test_patterns_scrub_without_knowing_the_value(text: str, leak: str) -> None:
    assert leak not in redact(text)


@pytest.mark.parametrize("pattern", [pattern for pattern, _ in _PATTERNS])
def test_no_text_a_pattern_scrubs_skips_the_patterns(pattern: re.Pattern[str]) -> None:
    """redact's shortcut (no trigger word: the text is kept) must never skip a text that one
    of the patterns would scrub."""

    @given(st.from_regex(pattern))
    def check(text: str) -> None:
        assert _ANY_PATTERN.search(text) is not None, text

    check()


def test_ordinary_text_is_kept() -> None:
    text = "verdict clean for 0190a3b4-1c2d-7e8f-9a0b-1c2d3e4f5a6b (signatures_version 2025-11)"
    assert redact(text) == text


def test_every_secret_setting_is_known() -> None:
    settings = Settings()
    secrets = secret_values(settings)
    for value in (
        settings.kafka.admin_password,
        settings.kafka.worker_password,
        settings.kafka.analyst_password,
        settings.s3.secret_key,
        settings.signing_secret,
        settings.dev_api_key,
        settings.postgres.password,
    ):
        assert value in secrets
    assert settings.kafka.bootstrap not in secrets


def test_the_process_config_writes_json_with_secrets_scrubbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("gateway", settings)
        logging.getLogger("any.library").warning("dsn %s", settings.postgres.dsn)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["process"] == "gateway" and entry["logger"] == "any.library"
    assert settings.postgres.password not in line
    assert logging_config("worker", settings)["root"]["handlers"] == ["default"]


# -- a real stack ------------------------------------------------------------------------------
LEAK_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "Signature=")


def stack_secrets(pipeline: Pipeline, events_url: str) -> dict[str, str]:
    s = pipeline.settings
    secrets = {
        "api key": s.dev_api_key,
        "S3 secret": s.s3.secret_key,
        "signing secret": s.signing_secret,
        "postgres password": s.postgres.password,
        "analyst password": s.kafka.analyst_password,
        "events token": events_url.split("token=", 1)[1],
    }
    for role in ("admin", "gateway", "worker", "scanner"):
        secrets[f"kafka {role} password"] = getattr(s.kafka, f"{role}_password")
    return secrets


def process_logs(pipeline: Pipeline) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in sorted(pipeline.logs.glob("*.log"))}


async def wait_for_line(pipeline: Pipeline, doc_id: str, message: str) -> None:
    for _ in range(60):
        if any(
            doc_id in line and message in line
            for text in process_logs(pipeline).values()
            for line in text.splitlines()
        ):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"no {message!r} line for {doc_id}")


@pytest.mark.integration
async def test_a_document_journey_logs_json_by_stage_and_no_secret(
    api: Api, pipeline: Pipeline
) -> None:
    data = b"journey " + uuid.uuid4().hex.encode()
    ticket = await api.upload("journey.txt", data)
    doc_id = ticket["id"]
    await api.wait_done(doc_id)
    await api.sse_raw(ticket["urls"]["events"], timeout_s=20)  # the events token in a URL
    async with api.session.get(
        f"{api.base}/docs/{doc_id}/content", headers=api._headers(None), allow_redirects=False
    ) as content:
        assert content.status == 302  # a pre-signed GET was made
    producer = Producer(producer_config(pipeline.settings))  # and a dead letter
    poison_key = str(uuid.uuid4())
    producer.produce(
        topic(pipeline.settings, topics.DOCS_CONFIRMED), key=poison_key.encode(), value=b"junk"
    )
    producer.flush(10)
    await wait_for_line(pipeline, poison_key, "dead-lettered")
    await wait_for_line(pipeline, doc_id, "status done")

    logs = process_logs(pipeline)
    assert {"gateway.log", "worker.log", "scanners.log"} <= set(logs)
    for name, text in logs.items():
        for label, secret in stack_secrets(pipeline, ticket["urls"]["events"]).items():
            assert secret not in text, f"{label} in {name}"
        for marker in LEAK_MARKERS:
            assert marker.lower() not in text.lower(), f"{marker} in {name}"
        for line in text.splitlines():  # one JSON object per line, librdkafka's included
            assert isinstance(json.loads(line), dict), f"{name}: {line}"

    ours = [
        json.loads(line) for text in logs.values() for line in text.splitlines() if doc_id in line
    ]
    stages = {(e["process"], e.get("stage"), e["message"].split(":")[0]) for e in ours}
    for expected in [
        ("gateway", "request", "upload requested"),
        ("gateway", "confirm", "upload confirmed"),
        ("gateway", "outbox", "published"),
        ("worker", "extraction", "extracted"),
        ("worker", "fan-out", "fanned out to 3 scanner(s), 0 verdict(s) reused, 0 unsupported"),
        ("worker", "tracker", "status done"),
        ("scanners", "scanner", "clamav"),
    ]:
        assert expected in stages, f"{expected} not among {sorted(map(str, stages))}"
    staged = [e for e in ours if e.get("stage") not in (None, "outbox")]
    assert all(e["tenant"] == pipeline.settings.dev_tenant for e in staged)
    # (the materializer's line per record is DEBUG: ten a document cost the worker ~4 % CPU)
    consumed = [e for e in ours if e.get("stage") in ("extraction", "scanner")]
    assert all(isinstance(e["partition"], int) and isinstance(e["offset"], int) for e in consumed)
    verdicts = [e for e in ours if e.get("verdict") and e.get("stage") == "scanner"]
    assert {e["scanner"] for e in verdicts} == {"clamav", "sim-a", "sim-b"}


def test_librdkafka_lines_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    """librdkafka writes straight to stderr unless given a logger: not JSON, not scrubbed."""
    settings = Settings(kafka=KafkaSettings(port=1))  # nothing listens there
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("scanners", settings)
        Producer(producer_config(settings)).poll(2)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    found = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(
        e["logger"] == "librdkafka" and "Connection refused" in str(e["message"]) for e in found
    )
