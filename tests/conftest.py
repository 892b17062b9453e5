"""Shared test set-up: fixtures live in tests/plugins/, one module per service."""

import pytest

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.kafka",
    "tests.plugins.cassandra",
    "tests.plugins.postgres",
    "tests.plugins.s3",
    "tests.plugins.clamav",
    "tests.plugins.pipeline",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "unit: needs no running service (pure logic, fakes at most): pytest -m unit"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything not marked ``integration`` is a unit test: ``pytest -m unit`` runs the fast
    suite with no service running."""
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
