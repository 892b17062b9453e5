"""Session fixtures that find the running services (the local runtime that ``ops/`` starts), or
start them as containers when asked (``INTELLIDOX_TESTCONTAINERS=1``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ops.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings pointing at live services: the local runtime, or wherever INTELLIDOX_* say, or
    containers started (and bootstrapped) for this session when asked."""
    base = get_settings()
    if not base.testcontainers:
        yield base
        return
    from tests.plugins.containers import container_settings

    with container_settings(base) as started:
        yield started


@pytest.fixture
def run_id() -> str:
    """A short unique name for this test's topics, group, keyspace, schema or bucket."""
    return "t" + uuid.uuid4().hex[:10]
