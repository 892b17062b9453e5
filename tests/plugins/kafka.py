"""Kafka fixtures: the running broker, and a private set of topics per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.bootstrap.topics import create_topics, delete_topics
from ops.services.kafka import Kafka
from ops.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    """``host:port`` of a healthy broker; fails (not skips) when none answers."""
    bootstrap = settings.kafka.bootstrap
    if not Kafka(settings).healthy():  # port first, so a stopped broker fails at once
        pytest.fail(
            f"Kafka is not answering on {bootstrap}: run `intellidox up kafka` "
            "(or set INTELLIDOX_TESTCONTAINERS=1 where Docker works)",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, settings: Settings, run_id: str) -> Iterator[str]:
    """The full declared topic set under the prefix ``<run_id>.``; yields the prefix."""
    prefix = f"{run_id}."
    create_topics(settings, prefix=prefix, partitions=settings.kafka.partitions)
    yield prefix
    delete_topics(settings, prefix)
