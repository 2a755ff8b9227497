"""SASL settings reach every Kafka client; incomplete ones stop start-up with one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

import hexpulse.kafka as hk
from hexpulse.errors import ConfigError
from hexpulse.settings import load_settings


def test_sasl_ssl_carries_tls_files_and_credentials(tmp_path: Path) -> None:
    secret = tmp_path / "kafka_password"
    secret.write_text("pa55word\n")
    s = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_sasl_username="hexpulse",
        kafka_sasl_password_file=secret,
    )
    config = hk.common_config(s)
    assert config["security_protocol"] == "SASL_SSL"
    assert config["ssl_cafile"] == str(tmp_path / "ca.pem")
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("hexpulse", "pa55word")
    assert "pa55word" not in repr(s)


def test_plaintext_and_ssl_send_no_sasl_options() -> None:
    for protocol in ("PLAINTEXT", "SSL"):
        config = hk.common_config(load_settings(kafka_security_protocol=protocol, kafka_sasl_username="x"))
        assert not any(k.startswith("sasl_") for k in config)


@pytest.mark.parametrize("missing", ["kafka_sasl_username", "kafka_sasl_password"])
def test_sasl_without_credentials_is_one_sentence(missing: str) -> None:
    given = {"kafka_sasl_username": "hexpulse", "kafka_sasl_password": "pa55word"}
    del given[missing]
    with pytest.raises(ConfigError, match="HEXPULSE_KAFKA_SASL_USERNAME and HEXPULSE_KAFKA_SASL_PASSWORD"):
        load_settings(kafka_security_protocol="SASL_PLAINTEXT", **given)


def test_unreadable_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HEXPULSE_KAFKA_SASL_PASSWORD_FILE"):
        load_settings(kafka_sasl_password_file=tmp_path / "missing")
