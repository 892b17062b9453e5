"""The shared exposition: bearer token, text format, reading it back, named counters."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from ops.metrics import authorized, expose, families, total


def test_only_the_exact_bearer_token_opens_the_page() -> None:
    assert authorized("Bearer s3cret", "s3cret")
    assert authorized("bearer s3cret", "s3cret")  # the scheme is case-insensitive
    for header in (None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret"):
        assert not authorized(header, "s3cret"), header
    assert not authorized("Bearer ", ""), "an empty token must not open the page"


def test_the_page_is_the_text_format_of_the_registry_or_401() -> None:
    registry = CollectorRegistry()
    counter = Counter("intellidox_test_things", "things", ["kind"], registry=registry)
    counter.labels("a").inc(3)
    refused = expose(None, "t", registry)
    assert refused.status == 401 and b"metrics" in refused.body
    page = expose("Bearer t", "t", registry)
    assert page.status == 200 and page.content_type.startswith("text/plain")
    text = page.body.decode()
    assert 'intellidox_test_things_total{kind="a"} 3.0' in text
    assert total(text, "intellidox_test_things_total") == 3.0
    assert total(text, "intellidox_test_things_total", kind="b") == 0.0
    assert "intellidox_test_things" in families(text)


def test_the_default_registry_is_served_so_other_modules_metrics_appear() -> None:
    name = f"intellidox_test_{uuid.uuid4().hex[:8]}"
    Counter(name, "registered by some other module").inc()
    try:
        assert total(expose("Bearer t", "t").body.decode(), f"{name}_total") == 1.0
    finally:
        REGISTRY.unregister(REGISTRY._names_to_collectors[name])
