"""Every listed engine imports, is well formed, and has a test file of its own."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from scanners.base import Scanner
from scanners.registry import ENGINES, parse_spec

TESTS = Path(__file__).parent


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_each_engine_is_complete_and_tested(name: str) -> None:
    engine = ENGINES[name]
    assert issubclass(engine, Scanner)
    assert engine.name == name and engine.vendor and engine.version
    assert engine.__doc__ and "Options" in engine.__doc__, f"{name}: document the options"
    module = Path(inspect.getfile(engine)).stem
    assert (TESTS / f"test_{module}.py").exists(), f"{name} has no tests/scanners/test_{module}.py"


def test_specs_name_an_instance_an_engine_and_options() -> None:
    assert parse_spec("clamav") == ("clamav", "clamav", {})
    assert parse_spec("sim7:simulated?latency_ms=5&verdict=malicious") == (
        "sim7",
        "simulated",
        {"latency_ms": "5", "verdict": "malicious"},
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nope", "unknown scanner engine"),
        ("a b:simulated", "must be letters"),
        ("x:simulated?latency_ms", "must be key=value"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_spec(spec)
