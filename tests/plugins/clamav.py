"""ClamAV fixture: a client for the live clamd."""

from __future__ import annotations

import pytest

from ops.clamd import ClamdClient, ClamdError
from ops.settings import Settings


@pytest.fixture(scope="session")
def clamd(settings: Settings) -> ClamdClient:
    client = ClamdClient.from_settings(settings, timeout=60)
    try:
        if client.ping():
            return client
        problem = "it did not answer PONG"
    except ClamdError as exc:
        problem = str(exc)
    pytest.fail(f"clamd is not reachable ({problem}); run `intellidox up clamav`", pytrace=False)
