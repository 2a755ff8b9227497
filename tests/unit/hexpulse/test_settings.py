from __future__ import annotations

import pytest

from hexpulse.errors import ConfigError
from hexpulse.settings import load_settings


def test_defaults_are_valid() -> None:
    s = load_settings()
    assert s.release_resolutions == (9, 8, 7)
    assert s.window_ms == 60_000


def test_env_lists_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEXPULSE_RELEASE_RESOLUTIONS", "9,8")
    monkeypatch.setenv("HEXPULSE_CORS_ORIGINS", "http://a.example, http://b.example")
    s = load_settings()
    assert s.release_resolutions == (9, 8)
    assert s.cors_origins == ("http://a.example", "http://b.example")


@pytest.mark.parametrize(
    ("var", "value", "phrase"),
    [
        ("HEXPULSE_WINDOW_S", "abc", "HEXPULSE_WINDOW_S"),
        ("HEXPULSE_WINDOW_S", "70", "divide a day"),
        ("HEXPULSE_RELEASE_RESOLUTIONS", "9,x", "comma-separated"),
        ("HEXPULSE_RELEASE_RESOLUTIONS", "10,9", "at most the base resolution"),
        ("HEXPULSE_CLICKHOUSE_DATABASE", "bad-name;drop", "HEXPULSE_CLICKHOUSE_DATABASE"),
        ("HEXPULSE_ENVIRONMENT", "production", "HEXPULSE_CLICKHOUSE_PASSWORD"),
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
