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
    config.addinivalue_line(
        "markers",
        "resource: needs no service but proves a resource bound on big inputs (memory over "
        "1 GiB, hostile archives): seconds each, so in the full suite only, not in -m unit",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything not marked ``integration`` or ``resource`` is a unit test: ``pytest -m unit``
    runs the fast suite with no service running."""
    for item in items:
        if not any(item.get_closest_marker(name) for name in ("integration", "resource")):
            item.add_marker(pytest.mark.unit)
