"""TLS settings reach the Kafka and ClickHouse clients (config only; no TLS server here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client

import aggregate.kafka.client as consumer_client
import hexpulse.kafka as hk
from hexpulse.errors import ConfigError
from hexpulse.settings import load_settings
from hexpulse.store.client import client_kwargs


def test_kafka_plaintext_has_no_ssl_options() -> None:
    config = hk.common_config(load_settings())
    assert config["security_protocol"] == "PLAINTEXT"
    assert not any(k.startswith("ssl_") for k in config)


def test_kafka_ssl_options_reach_every_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(
        kafka_bootstrap="broker-1:9093,broker-2:9093",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_ssl_certfile=tmp_path / "client.pem",
        kafka_ssl_keyfile=tmp_path / "client.key",
    )
    expected = {
        "bootstrap_servers": ["broker-1:9093", "broker-2:9093"],
        "security_protocol": "SSL",
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "client.pem"),
        "ssl_keyfile": str(tmp_path / "client.key"),
        "bootstrap_timeout_ms": 10_000,
    }
    assert hk.common_config(s) == expected

    seen: dict[str, dict[str, Any]] = {}

    def recorder(name: str) -> Any:
        def make(*_topics: str, **config: Any) -> object:
            seen[name] = config
            return object()

        return make

    # Record the constructor arguments only: no broker is contacted in this unit test.
    monkeypatch.setattr(hk, "KafkaProducer", recorder("producer"))
    monkeypatch.setattr(consumer_client, "KafkaConsumer", recorder("consumer"))
    monkeypatch.setattr(hk, "KafkaAdminClient", recorder("admin"))
    hk.make_producer(s)
    consumer_client.make_consumer(s, "pings", group_id="g")
    hk.make_admin(s)
    for name in ("producer", "consumer", "admin"):
        assert expected.items() <= seen[name].items(), name
    # kafka-python verifies the broker's host name by default; nothing here turns that off.
    assert all("ssl_check_hostname" not in cfg for cfg in seen.values())


def test_kafka_sasl_ssl_options(tmp_path: Path) -> None:
    pw = tmp_path / "kafka_password"
    pw.write_text("s3cret\n")
    s = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_sasl_username="hexpulse",
        kafka_sasl_password_file=pw,
    )
    config = hk.common_config(s)
    assert config["security_protocol"] == "SASL_SSL" and config["ssl_cafile"] == str(tmp_path / "ca.pem")
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("hexpulse", "s3cret")
    with pytest.raises(ConfigError, match="HEXPULSE_KAFKA_SASL_USERNAME"):
        load_settings(kafka_security_protocol="SASL_SSL")


def test_clickhouse_secure_options_reach_the_connection(tmp_path: Path) -> None:
    s = load_settings(clickhouse_secure=True, clickhouse_ca_certs=tmp_path / "ca.pem", clickhouse_port=9440)
    kwargs = client_kwargs(s, "hexpulse")
    assert kwargs["secure"] is True and kwargs["verify"] is True
    conn = Client(**kwargs).connection  # constructing a client does not connect
    assert conn.secure_socket is True
    assert conn.verify_cert is True
    assert conn.ssl_options == {"ca_certs": str(tmp_path / "ca.pem")}


def test_clickhouse_plain_by_default() -> None:
    conn = Client(**client_kwargs(load_settings(), None)).connection
    assert conn.secure_socket is False
