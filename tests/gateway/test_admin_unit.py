"""The admin API publishes with the script check it was created with (no services)."""

from __future__ import annotations

from pathlib import Path

from gateway.admin import SCRIPT_CHECK
from gateway.app import create_app
from ops.settings import Settings


async def _accept_all(_settings: Settings, _source: bytes) -> None:
    return None


def test_the_gateway_keeps_the_script_check_it_is_given(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, dev_mode=True)
    assert create_app(settings, _accept_all)[SCRIPT_CHECK] is _accept_all
    assert SCRIPT_CHECK not in create_app(settings)  # publishing then answers 503
