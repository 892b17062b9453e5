from pathlib import Path

import pytest

from ops.settings import Settings, load_settings, settings_environment


def test_defaults_match_the_local_runtime() -> None:
    settings = load_settings({})
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.s3_endpoint == "http://127.0.0.1:18333"
    assert "port=15432" in settings.postgres_dsn


def test_prefixed_variables_are_converted_to_the_field_type() -> None:
    settings = load_settings(
        {
            "INTELLIDOX_KAFKA_PORT": "29092",
            "INTELLIDOX_VAR_DIR": "/tmp/x",
            "INTELLIDOX_DEV_MODE": "yes",
            "INTELLIDOX_SCANNER_HEARTBEAT_S": "2.5",
            "KAFKA_PORT": "1",  # unprefixed names are not ours
        }
    )
    assert settings.kafka_port == 29092
    assert settings.var_dir == Path("/tmp/x")
    assert settings.dev_mode is True
    assert settings.scanner_heartbeat_s == 2.5


def test_a_bad_number_is_an_error_naming_the_value() -> None:
    with pytest.raises(ValueError, match="abc"):
        load_settings({"INTELLIDOX_KAFKA_PORT": "abc"})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.kafka_port = 1  # type: ignore[misc]


def test_every_field_converts_from_its_environment_text() -> None:
    changed = Settings().with_overrides(kafka_port=1, dev_mode=True, meta_cache_s=0.5)
    assert load_settings(settings_environment(changed)) == changed
