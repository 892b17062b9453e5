"""Shared test set-up: fixtures live in tests/plugins/, one module per service."""

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.kafka",
    "tests.plugins.cassandra",
    "tests.plugins.postgres",
    "tests.plugins.s3",
    "tests.plugins.clamav",
    "tests.plugins.pipeline",
]
