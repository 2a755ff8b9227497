"""SASL/SCRAM on a real broker: with HEXPULSE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT and a SCRAM
user, `hexpulse topics`, a producer and a consumer work; a wrong password is one sentence (exit 2).

A private broker gets a second listener that requires SCRAM-SHA-512 (TLS is the same client
path as HEXPULSE_KAFKA_SECURITY_PROTOCOL=SSL, which tests/unit/test_privacy_keys_tls.py covers).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion
from pydantic import SecretStr

from aggregate.kafka.client import make_consumer
from hexpulse.kafka import make_producer
from hexpulse.settings import Settings
from tests.support.aggregate import HEXPULSE, free_port
from tests.support.kafka_broker import PrivateKafka

pytestmark = pytest.mark.integration

USER, PASSWORD = "hexpulse-consumer", "s3cret-for-this-test-only"


def test_scram_credentials_reach_every_client(services: Settings, unique_name: str, tmp_path: Path) -> None:
    sasl_port = free_port()
    broker = PrivateKafka(tmp_path / "kafka-state")
    broker.extra_config = (
        f"listeners=PLAINTEXT://127.0.0.1:{broker.port},CONTROLLER://127.0.0.1:{broker.controller_port},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
    )
    broker.start()
    try:
        # The user is created over the plaintext listener, as an operator would with kafka-configs.
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        result = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(USER, ScramMechanism.SCRAM_SHA_512, PASSWORD)]
        )
        admin.close()
        assert not any(result.values()), result
        secret = tmp_path / "kafka_password"
        secret.write_text(PASSWORD + "\n")
        topic = f"sasl-{unique_name}"
        env = {
            "PATH": "/usr/bin:/bin",
            "HEXPULSE_STATE_DIR": str(tmp_path),
            "HEXPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{sasl_port}",
            "HEXPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "HEXPULSE_KAFKA_SASL_USERNAME": USER,
            "HEXPULSE_KAFKA_SASL_PASSWORD_FILE": str(secret),
            "HEXPULSE_TOPIC_PINGS": topic,
            "HEXPULSE_TOPIC_DLQ": topic + ".dlq",
        }
        run = subprocess.run([HEXPULSE, "topics"], env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert f"created ['{topic}', '{topic}.dlq']" in run.stdout

        s = services.model_copy(
            update={
                "kafka_bootstrap": f"127.0.0.1:{sasl_port}",
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_username": USER,
                "kafka_sasl_password": SecretStr(PASSWORD),
            }
        )
        producer = make_producer(s, linger_ms=0)
        meta = producer.send(topic, key=b"device-1", value=b'{"v": 1}').get(timeout=30)
        producer.close()
        consumer = make_consumer(s, group_id=None, enable_auto_commit=False)
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        deadline = time.monotonic() + 30
        got: list[bytes] = []
        while not got and time.monotonic() < deadline:
            got = [r.value for r in consumer.poll(timeout_ms=500).get(tp, [])]
        consumer.close()
        assert got == [b'{"v": 1}']

        secret.write_text("not-the-password")
        bad = subprocess.run([HEXPULSE, "topics"], env=env, capture_output=True, text=True, check=False)
        assert bad.returncode == 2
        line = bad.stderr.strip().splitlines()[-1]
        assert line.startswith("hexpulse: ") and "SASL" in line and PASSWORD not in bad.stderr
    finally:
        broker.stop()
