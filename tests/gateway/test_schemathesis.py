"""A bounded schemathesis run against the real gateway: no server errors, no spec violations.

Every operation of ``gateway/openapi.json`` gets generated requests (valid and invalid), sent
to the test pipeline's gateway with a real key.  Checks that are excluded, and why:
- ``positive_data_acceptance``: a request that fits the schema may still be refused for a
  reason the schema cannot express (confirm before the upload: 409; an unknown but
  well-formed id: 404), so "valid input is accepted" does not hold by design.
- 413 counts as a rejection of invalid data (a size over the limit).
- ``use_after_free`` and ``ensure_resource_availability``: stateful checks for APIs with
  DELETE; there is none.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks

from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration

# 413 (a declared size over 1 GiB) is the documented answer to that invalid input.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 405, 409, 413, 422]
"""
)
SCHEMA = schemathesis.openapi.from_path("gateway/openapi.json", config=CONFIG)
EXAMPLES_PER_OPERATION = 100  # 6 operations: >= 500 cases in all
EXCLUDED = [
    checks.positive_data_acceptance,
    checks.use_after_free,
    checks.ensure_resource_availability,
]
SEEN: list[int] = []


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_gateway_honours_its_spec(case: Any, pipeline: Pipeline) -> None:
    headers = {"Authorization": f"Bearer {pipeline.settings.dev_api_key}"}
    response = case.call_and_validate(
        base_url=pipeline.url, headers=headers, excluded_checks=EXCLUDED, allow_redirects=False
    )
    assert response.status_code < 500
    SEEN.append(response.status_code)


def test_the_run_was_big_enough() -> None:
    if not SEEN:
        pytest.skip("run together with test_the_gateway_honours_its_spec")
    assert len(SEEN) >= 500, len(SEEN)
    print(f"schemathesis: {len(SEEN)} cases, statuses {sorted(set(SEEN))}")
