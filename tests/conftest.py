"""Shared test set-up: fixtures live in tests/plugins/, one module per service."""

from pathlib import Path

import pytest

INTEGRATION_MODULE = "pytestmark = pytest.mark.integration"  # every test of the module

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


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest -m unit`` does not import a module whose every test is ``integration``: none
    of them would run, and their imports (schemathesis, playwright, the stacks) are seconds
    of the fast suite.  Any other selection collects them as usual."""
    if config.getoption("markexpr") != "unit" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py":
        return None
    lines = collection_path.read_text(encoding="utf-8").splitlines()
    return True if INTEGRATION_MODULE in lines else None
