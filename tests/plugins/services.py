"""Session fixtures that find the running services: the local runtime that ``ops/`` starts."""

from __future__ import annotations

import uuid

import pytest

from ops.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at live services (the local runtime, or wherever INTELLIDOX_* say)."""
    return get_settings()


@pytest.fixture
def run_id() -> str:
    """A short unique name for this test's topics, group, keyspace, schema or bucket."""
    return "t" + uuid.uuid4().hex[:10]
