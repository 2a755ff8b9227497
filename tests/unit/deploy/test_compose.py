"""deploy/: the compose file runs real hexpulse commands with real settings, in production mode."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import typer

from hexpulse.cli import app
from hexpulse.errors import ConfigError
from hexpulse.settings import Settings, load_settings
from hexpulse.store.client import client_kwargs
from tests.support.paths import REPO

yaml = pytest.importorskip("yaml")  # PyYAML is in the dev extra

DEPLOY = REPO / "deploy"
_INTERP = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with every VAR unset."""
    return _INTERP.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def _hexpulse_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "hexpulse" in str(s.get("image", ""))}


def _invocations(service: dict[str, Any]) -> list[list[str]]:
    """The hexpulse argument lists a service runs (image entrypoint, or `hexpulse …` in a shell)."""
    command = service.get("command") or []
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        return [[_interpolate(str(a)) for a in command]]
    script = " ".join([*entrypoint[1:], *command])
    calls = re.findall(r"\bhexpulse((?:\s+[^;&|]+?)?)\s*(?:;|&&|\|\||$)", script)
    return [shlex.split(c) for c in calls]


def test_every_pipeline_job_is_there(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    assert {"kafka", "clickhouse", "topics", "migrate", "consumer", "releaser", "api"} <= names
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert compose["services"]["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert "KAFKA_PROCESS_ROLES" in compose["services"]["kafka"]["environment"]  # KRaft, no ZooKeeper
    for name in ("kafka", "clickhouse", "consumer", "api"):
        assert "healthcheck" in compose["services"][name], name


def test_every_command_is_a_real_hexpulse_subcommand(compose: dict[str, Any]) -> None:
    root = typer.main.get_command(app)  # typer bundles its own click: duck-type groups
    seen = 0
    for name, service in _hexpulse_services(compose).items():
        calls = _invocations(service)
        assert calls and all(calls), f"{name} runs no hexpulse command"
        for argv in calls:
            cmd: Any = root
            path: list[str] = []
            while hasattr(cmd, "commands"):
                assert argv, f"{name}: 'hexpulse {' '.join(path)}' needs a sub-command"
                sub = cmd.commands.get(argv[0])
                assert sub is not None, f"{name}: 'hexpulse {' '.join([*path, argv[0]])}' is not a command"
                path.append(argv.pop(0))
                cmd = sub
            # Parse (not run) the options, so a misspelt flag or a bad value fails here.
            cmd.make_context(" ".join(path), list(argv))
            seen += 1
    assert seen >= 7


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "use the mapping form of environment"
    return {k: _interpolate(str(v)) for k, v in env.items()}


def test_every_hexpulse_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name, service in compose["services"].items():
        for key in _env(service):
            if key.startswith("HEXPULSE_"):
                assert key.removeprefix("HEXPULSE_").lower() in fields, f"{name}: {key} is not a setting"


def test_compose_settings_are_valid_production_settings(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "master_key").write_text("ab" * 32)
    (tmp_path / "clickhouse_password").write_text("a-real-password\n")
    (tmp_path / "clickhouse_api_password").write_text("the-api-password\n")
    for name, service in _hexpulse_services(compose).items():
        mounted = set(service.get("secrets") or [])
        for key, value in _env(service).items():
            if key.endswith("PASSWORD_FILE"):  # read when the settings load, unlike the master key
                secret = value.removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {key} names a secret it does not mount"
        env = {k: v.replace("/run/secrets/", f"{tmp_path}/") for k, v in _env(service).items()}
        for key in list(Settings.model_fields):
            monkeypatch.delenv(f"HEXPULSE_{key.upper()}", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.environment == "production", name
        if name == "api":
            # Hole 6 of issue #9: the API holds its own ClickHouse login only, never the pipeline's
            # (which reads the exact partials) nor the master key or the key ring.
            assert mounted == {"clickhouse_api_password"}, name
            assert not service.get("volumes"), "the API needs no key ring"
            assert client_kwargs(settings, None, "api")["password"] == "the-api-password"  # noqa: S105
            with pytest.raises(ConfigError, match="HEXPULSE_CLICKHOUSE_PASSWORD"):
                client_kwargs(settings, None, "pipeline")
        else:
            assert "clickhouse_password" in mounted, f"{name} reads the ClickHouse password file"
            assert client_kwargs(settings, None, "pipeline")["password"] == "a-real-password", name  # noqa: S105


def _listeners(env: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Kafka listener name → (security protocol, port)."""
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    out = {}
    for item in env["KAFKA_LISTENERS"].split(","):
        name, _, address = item.partition("://")
        out[name] = (protocols[name], int(address.rsplit(":", 1)[1]))
    return out


def test_kafka_publishes_no_plaintext_listener(compose: dict[str, Any]) -> None:
    """Pings carry raw device ids: whatever port leaves the host takes TLS and a SASL login."""
    kafka = compose["services"]["kafka"]
    env = _env(kafka)
    listeners = _listeners(env)
    published = {int(str(p).split(":")[-1]) for p in kafka.get("ports") or []}
    assert published, "the gateways need a published listener"
    for name, (protocol, port) in listeners.items():
        if port in published:
            assert protocol == "SASL_SSL", f"listener {name} on published port {port} is {protocol}"
    advertised = {item.partition("://")[0] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert advertised <= set(listeners)
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    # The keystore, its password and the logins come from secrets, not from this file.
    targets = {s["target"] for s in kafka["secrets"]}
    jaas = re.search(r"java\.security\.auth\.login\.config=(\S+)", env["KAFKA_OPTS"])
    assert jaas and jaas.group(1) in targets
    for key in ("KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS"):
        assert f"/etc/kafka/secrets/{env[key]}" in targets, key
    assert not any("PASSWORD" in k or "JAAS_CONFIG" in k for k in env), "no secret in the environment"


def test_the_api_clickhouse_user_may_use_the_public_database_only(compose: dict[str, Any]) -> None:
    users_d = DEPLOY / "clickhouse" / "users.d" / "hexpulse.xml"
    users = ElementTree.parse(users_d).getroot().find("users")  # noqa: S314 - our own file
    assert users is not None
    api_env = _env(compose["services"]["api"])
    pipeline_env = _env(compose["services"]["consumer"])
    api = users.find(api_env["HEXPULSE_API_CLICKHOUSE_USER"])
    pipeline = users.find(pipeline_env["HEXPULSE_CLICKHOUSE_USER"])
    assert api is not None and pipeline is not None
    allowed = [db.text for db in api.findall("allow_databases/database")]
    assert allowed == [api_env["HEXPULSE_CLICKHOUSE_DATABASE"]]  # not <database>_exact
    assert pipeline.find("allow_databases") is None  # the pipeline reads both databases
    for user in (api, pipeline):
        password = user.find("password")
        assert password is not None and password.get("from_env") and not (password.text or "").strip()
    mounted = set(compose["services"]["clickhouse"]["secrets"])
    assert {"clickhouse_password", "clickhouse_api_password"} <= mounted


def test_partitions_cover_the_consumers(compose: dict[str, Any]) -> None:
    partitions = int(_env(compose["services"]["consumer"])["HEXPULSE_TOPIC_PARTITIONS"])
    replicas = int(_interpolate(str(compose["services"]["consumer"]["deploy"]["replicas"])))
    assert partitions >= replicas >= 2
    assert int(_interpolate(str(compose["services"]["releaser"]["deploy"]["replicas"]))) == 1


def test_dockerfile_runs_hexpulse_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["hexpulse"\]', text, re.M)


def test_clickhouse_password_file_setting(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    assert (
        load_settings(clickhouse_password_file=secret).clickhouse_password.get_secret_value() == "from-a-file"
    )
    explicit = load_settings(clickhouse_password="explicit", clickhouse_password_file=secret)  # noqa: S106
    assert explicit.clickhouse_password.get_secret_value() == "explicit"
    from hexpulse.errors import ConfigError

    with pytest.raises(ConfigError, match="HEXPULSE_CLICKHOUSE_PASSWORD_FILE"):
        load_settings(clickhouse_password_file=tmp_path / "missing")


def test_the_image_holds_every_package() -> None:
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = [p.rstrip("*") for p in include["include"]]
    text = (DEPLOY / "Dockerfile").read_text()
    missing = [p for p in packages if not re.search(rf"^COPY {p} \./{p}$", text, re.M)]
    assert missing == [], "the Dockerfile does not copy these packages"
