"""Access control: bearer keys, scopes, revocation, per-key rate limits, CORS, open probes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.api import CELLS9, app_client, bbox_of, private_settings, seed

pytestmark = pytest.mark.integration

RATE = 5


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = private_settings(
        migrated, "apia", api_key_cache_s=0.0, rate_limit_per_min=RATE, cors_origins=("https://tcc.example",)
    )
    yield seed(settings)
    drop_database(settings)


@pytest.fixture()
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    """A fresh app per test, so each starts with full token buckets."""
    yield from app_client(data)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BBOX = bbox_of(CELLS9, 0.01)


@pytest.mark.parametrize(
    "path",
    ["/v1/density?bbox=" + BBOX, "/v1/traffic?bbox=" + BBOX, "/v1/windows", "/v1/privacy", "/metrics",
     "/v1/density/series?cell=8941aa5a8d3ffff", "/v1/density/total", "/v1/density/stream?bbox=" + BBOX],
)  # fmt: skip
def test_everything_but_probes_needs_a_key(api: TestClient, path: str) -> None:
    resp = api.get(path)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in resp.json()["detail"]


def test_probes_and_shell_are_open(api: TestClient) -> None:
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200
    assert api.get("/").status_code == 200


@pytest.mark.parametrize("token", ["nonsense", "hxp_000000000000_wrongsecret", "hxp_short_x"])
def test_unknown_or_malformed_keys(api: TestClient, token: str) -> None:
    resp = api.get("/v1/windows", headers=bearer(token))
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


def test_a_wrong_secret_for_a_real_id_is_refused(api: TestClient, data: dict[str, Any]) -> None:
    real = data["tokens"]["density"]
    forged = real[: real.rindex("_") + 1] + "A" * 43
    assert api.get("/v1/windows", headers=bearer(forged)).status_code == 401


def test_scopes(api: TestClient, data: dict[str, Any]) -> None:
    tokens = data["tokens"]
    assert api.get("/v1/traffic", params={"bbox": BBOX}, headers=bearer(tokens["density"])).status_code == 403
    assert api.get("/v1/density", params={"bbox": BBOX}, headers=bearer(tokens["traffic"])).status_code == 403
    assert api.get("/metrics", headers=bearer(tokens["density"])).status_code == 403
    metrics = api.get("/metrics", headers=bearer(tokens["admin"]))
    assert metrics.status_code == 200 and "hexpulse_api_requests_total" in metrics.text
    assert api.get("/v1/density", params={"bbox": BBOX}, headers=bearer(tokens["admin"])).status_code == 200


def test_keys_are_stored_hashed(data: dict[str, Any]) -> None:
    from hexpulse.store import connect

    client = connect(data["settings"])
    stored = " ".join(str(r) for r in client.execute("SELECT * FROM api_keys"))
    client.disconnect()
    for token in data["tokens"].values():
        assert token.split("_", 2)[2] not in stored


def test_revoked_key_is_refused(api: TestClient, data: dict[str, Any]) -> None:
    token = data["tokens"]["doomed"]
    assert api.get("/v1/windows", headers=bearer(token)).status_code == 200
    data["store"].revoke(token.split("_", 2)[1])
    resp = api.get("/v1/windows", headers=bearer(token))
    assert resp.status_code == 401 and "revoked" in resp.json()["detail"]


def test_rate_limit_per_key(api: TestClient, data: dict[str, Any]) -> None:
    tokens = data["tokens"]
    codes = [api.get("/v1/windows", headers=bearer(tokens["density"])).status_code for _ in range(RATE + 1)]
    assert codes == [200] * RATE + [429]
    limited = api.get("/v1/windows", headers=bearer(tokens["density"]))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in limited.json()["detail"]
    assert api.get("/v1/windows", headers=bearer(tokens["admin"])).status_code == 200  # buckets are per key


def test_cors(api: TestClient) -> None:
    pre = api.options(
        "/v1/density",
        headers={"Origin": "https://tcc.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    assert pre.headers["access-control-allow-origin"] == "https://tcc.example"
    other = api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_store_outage_is_503_not_500(data: dict[str, Any]) -> None:
    """ClickHouse unreachable (a closed loopback port): readiness fails, data requests answer 503."""
    from tests.support.api_server import free_port

    down = data["settings"].model_copy(update={"clickhouse_port": free_port()})
    with TestClient(create_app(down)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "not reachable" in ready.json()["detail"]
        resp = client.get("/v1/density", params={"bbox": BBOX}, headers=bearer(data["tokens"]["density"]))
        assert resp.status_code == 503 and resp.json()["error"] == "unavailable"
        assert client.get("/healthz").status_code == 200
