from __future__ import annotations

import pytest
from pydantic import SecretStr

from hexpulse.errors import ConfigError
from hexpulse.settings import load_settings
from hexpulse.store import connect


def test_defaults_are_valid() -> None:
    s = load_settings()
    assert s.release_resolutions == (9, 8, 7)
    assert s.window_ms == 60_000


def test_env_lists_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEXPULSE_RELEASE_RESOLUTIONS", "9,8")
    monkeypatch.setenv("HEXPULSE_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("HEXPULSE_TRAFFIC_SPEED_EDGES_KMH", "15,30,60,90")
    s = load_settings()
    assert s.release_resolutions == (9, 8)
    assert s.traffic_speed_edges_kmh == (15, 30, 60, 90)
    assert s.cors_origins == ("http://a.example", "http://b.example")


@pytest.mark.parametrize(
    ("var", "value", "phrase"),
    [
        ("HEXPULSE_WINDOW_S", "abc", "HEXPULSE_WINDOW_S"),
        ("HEXPULSE_WINDOW_S", "70", "divide a day"),
        ("HEXPULSE_RELEASE_RESOLUTIONS", "9,x", "comma-separated"),
        ("HEXPULSE_RELEASE_RESOLUTIONS", "10,9", "at most the base resolution"),
        ("HEXPULSE_TRAFFIC_SPEED_EDGES_KMH", "20,20,70", "strictly increasing"),
        ("HEXPULSE_TRAFFIC_SPEED_EDGES_KMH", "0,40", "must be positive"),
        ("HEXPULSE_TRAFFIC_SPEED_EDGES_KMH", "20,fast", "comma-separated"),
        ("HEXPULSE_CLICKHOUSE_DATABASE", "bad-name;drop", "HEXPULSE_CLICKHOUSE_DATABASE"),
        ("HEXPULSE_CLICKHOUSE_EXACT_DATABASE", "hexpulse", "must differ from clickhouse_database"),
    ],
)
def test_invalid_values_give_one_sentence(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, phrase: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert phrase in message
    assert "\n" not in message


def test_exact_database_follows_the_public_one() -> None:
    s = load_settings(clickhouse_database="city")
    assert s.exact_database == "city_exact"
    assert s.model_copy(update={"clickhouse_database": "other"}).exact_database == "other_exact"
    assert load_settings(clickhouse_exact_database="vault").exact_database == "vault"


def test_production_api_needs_its_own_clickhouse_user() -> None:
    with pytest.raises(ConfigError, match="its own ClickHouse user"):
        load_settings(environment="production", api_clickhouse_user="default")


@pytest.mark.parametrize(
    ("role", "phrase", "other"),
    [
        ("pipeline", "HEXPULSE_CLICKHOUSE_PASSWORD", "api_clickhouse_password"),
        ("api", "HEXPULSE_API_CLICKHOUSE_PASSWORD", "clickhouse_password"),
    ],
)
def test_production_refuses_an_empty_password_where_it_is_used(
    role: str, phrase: str, other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process holds only its own secret (the API never gets the pipeline's password), so
    each password is checked when its user connects, with one sentence; the other one is no help."""
    # The integration suite's per-run API user may have exported its password into this process.
    for name in ("HEXPULSE_CLICKHOUSE_PASSWORD", "HEXPULSE_API_CLICKHOUSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(environment="production", **{other: SecretStr("the-other-users")})
    with pytest.raises(ConfigError) as info:
        connect(s, role=role)  # type: ignore[arg-type]
    assert phrase in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("window_s", "wpd"), [(60, 721), (60, 1441), (60, 7), (10, 8639), (3600, 5)])
def test_windows_per_device_day_must_divide_the_day(window_s: int, wpd: int) -> None:
    """Hole 3 of issue #9: W = 721 gave m = 1, so a device entered all 1,440 windows while the
    ledger charged 721; any W that does not divide the day's windows is refused in one sentence."""
    with pytest.raises(ConfigError) as info:
        load_settings(window_s=window_s, windows_per_device_day=wpd)
    message = str(info.value)
    assert message.startswith("Invalid setting") and "must divide" in message and "\n" not in message


@pytest.mark.parametrize(("window_s", "wpd"), [(60, 1440), (60, 720), (60, 1), (60, 480), (10, 8640)])
def test_windows_per_device_day_divisors_are_accepted(window_s: int, wpd: int) -> None:
    from aggregate.bounding import Bounds

    s = load_settings(window_s=window_s, windows_per_device_day=wpd)
    per_day = 86_400 // window_s
    assert Bounds.from_settings(s).day_modulus * wpd == per_day
