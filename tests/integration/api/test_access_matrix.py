"""The access matrix (issue #15): every documented route × (no key, malformed key, revoked key,
expired key, a key of another scope, a key of the right scope) answers 401/401/401/401/403/neither.
The routes are read from the app's own OpenAPI document, so a new route that answers without a key
fails here until it is listed as open, and one that no single-scope key is refused fails as unscoped.

Per-subscriber resources (``OWNED``: the alert subscriptions, their events and deliveries): another
subscriber's id is 404 (never 403: the answer does not confirm it exists), its collections and
streams never show another's rows, and a route with a path parameter under an owner-scoped prefix
must be listed in ``OWNED`` (so a new one is checked)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts import events as alert_events
from alerts.levels import DEFAULT_DENSITY_LEVELS, Level, Rule
from alerts.subscriptions import SubscriptionStore
from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from hexpulse.times import naive_utc_now
from tests.support.api import CELLS9, bbox_of, private_settings, seed

pytestmark = pytest.mark.integration

# Documented routes anyone may call: the probes. (The dashboard shell, its config and the public
# privacy page are open too and are not in the OpenAPI document.)
OPEN = {"/healthz", "/readyz"}
# Endless responses → the one key of another scope to try; their success is test_live.py's.
STREAMS = {"/v1/density/stream": "traffic", "/v1/alerts/stream": "traffic"}
# Per-subscriber resources: path → the methods that address one resource; prefixes they live under.
OWNED: dict[str, tuple[str, ...]] = {"/v1/alerts/subscriptions/{sub_id}": ("GET", "DELETE")}
OWNED_PREFIXES = ("/v1/alerts/",)
# Owner-scoped collections: another subscriber's ids must never appear in them.
COLLECTIONS = ("/v1/alerts/subscriptions", "/v1/alerts/events", "/v1/alerts/deliveries")
# A plausible value for every required query parameter, so a refusal is the key's, not the query's.
QUERY = {"bbox": bbox_of(CELLS9, 0.01), "cell": f"{CELLS9[0]:x}"}
SINGLE_SCOPE = ("density", "traffic")  # keys of the seed holding one non-admin scope each

Route = tuple[str, str]


def _owned_by_a(settings: Settings, owner: str) -> dict[str, str]:
    """A subscription of key ``alerts_a`` with one event and one pending webhook delivery."""
    pool = ClickHousePool(settings, size=1)
    try:
        rule = Rule(tuple(Level(n, t, t * 0.8) for n, t in DEFAULT_DENSITY_LEVELS), 2, 0.9)
        sub = SubscriptionStore(pool).create(owner, "a's gates", "zone-of-a", "crowd_density", 1.0, rule,
                                             "https://hooks.example.org/a", ())  # fmt: skip
        w = naive_utc_now().replace(second=0, microsecond=0) - timedelta(minutes=5)
        event_id = "evt_" + "a" * 24
        pool.insert(f"INSERT INTO alert_events ({alert_events.EVENT_COLUMNS}) VALUES", [(
            event_id, sub.subscription_id, owner, "zone-of-a", w, "raised", "normal", "busy", "crowd_density",
            2.5, 0.1, 2.3, 2.7, 2.0, 0.99, w)])  # fmt: skip
        pool.insert(f"INSERT INTO alert_deliveries ({alert_events.DELIVERY_COLUMNS}) VALUES",
                    [(sub.subscription_id, event_id, w, "pending", 1, 0.0, 2e9, 503, "HTTP 503",
                      1)])  # fmt: skip
        return {"sub_id": sub.subscription_id, "event_id": event_id}
    finally:
        pool.close()


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = private_settings(migrated, "apim", api_key_cache_s=0.0, rate_limit_per_min=1_000_000)
    d = seed(settings)
    revoked = d["store"].create("revoked", ["admin"])[1]
    d["store"].revoke(revoked.split("_", 2)[1])
    d["tokens"]["revoked"] = revoked
    past = naive_utc_now() - timedelta(seconds=1)
    d["tokens"]["expired"] = d["store"].create("expired", ["admin"], past)[1]
    for name in ("alerts_a", "alerts_b"):
        d["tokens"][name] = d["store"].create(name, ["alerts:write"])[1]
    d["owned"] = _owned_by_a(settings, d["tokens"]["alerts_a"].split("_", 2)[1])
    yield d
    drop_database(settings)


@pytest.fixture(scope="module")
def matrix(data: dict[str, Any]) -> Iterator[tuple[TestClient, list[Route]]]:
    app = create_app(data["settings"])
    paths = app.openapi()["paths"]
    routes = [(method.upper(), path) for path, ops in paths.items() for method in ops]
    with TestClient(app) as client:
        yield client, routes


def call(client: TestClient, method: str, path: str, token: str | None) -> int:
    url = re.sub(r"\{[^}]+\}", "no-such-id", path)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    status: int = client.request(method, url, params=QUERY, headers=headers, json=body).status_code
    return status


def test_every_route_but_the_probes_needs_a_key(matrix: tuple[TestClient, list[Route]]) -> None:
    client, routes = matrix
    answered = sorted(f"{m} {p}" for m, p in routes if p not in OPEN and call(client, m, p, None) != 401)
    assert not answered, f"routes that answer without a key (list them in OPEN if public): {answered}"
    assert len(routes) - len(OPEN) >= 10  # the matrix really covers the API


def test_refusals(matrix: tuple[TestClient, list[Route]], data: dict[str, Any]) -> None:
    client, routes = matrix
    tokens = data["tokens"]
    wrong: list[str] = []
    for method, path in routes:
        if path in OPEN:
            continue
        for case, token in (("malformed key", "hxp_nonsense"), ("revoked key", tokens["revoked"]),
                            ("expired key", tokens["expired"])):  # fmt: skip
            if (got := call(client, method, path, token)) != 401:
                wrong.append(f"{method} {path} [{case}]: {got}")
        names = (STREAMS[path],) if path in STREAMS else (*SINGLE_SCOPE, "admin")
        keyed = {name: call(client, method, path, tokens[name]) for name in names}
        if 403 not in keyed.values():
            wrong.append(f"{method} {path}: no key of another scope is refused: {keyed}")
        if any(code == 401 or code >= 500 for code in keyed.values()) or keyed.get("admin", 200) == 403:
            wrong.append(f"{method} {path}: valid keys got {keyed}")
    assert not wrong, "\n".join(wrong)


def test_an_expired_key_is_told_so(matrix: tuple[TestClient, list[Route]], data: dict[str, Any]) -> None:
    client, _ = matrix
    r = client.get("/v1/windows", headers={"Authorization": f"Bearer {data['tokens']['expired']}"})
    assert r.status_code == 401 and "expired at" in r.json()["detail"], r.text


def test_every_owner_scoped_route_is_in_the_matrix(matrix: tuple[TestClient, list[Route]]) -> None:
    _, routes = matrix
    addressed = {p for _, p in routes if p.startswith(OWNED_PREFIXES) and "{" in p}
    assert addressed <= set(OWNED), f"owner-scoped routes missing from OWNED: {addressed - set(OWNED)}"


def test_another_subscribers_resources_are_not_found_and_never_listed(
    matrix: tuple[TestClient, list[Route]], data: dict[str, Any]
) -> None:
    client, _ = matrix
    mine, theirs = data["tokens"]["alerts_a"], data["tokens"]["alerts_b"]
    owned = data["owned"]
    for path, methods in OWNED.items():
        url = path.replace("{sub_id}", owned["sub_id"])
        for method in methods:
            r = client.request(method, url, headers={"Authorization": f"Bearer {theirs}"})
            assert r.status_code == 404, (method, path, r.status_code)
            assert owned["sub_id"] in r.json()["detail"] or "no subscription" in r.json()["detail"]
        # The other key's DELETE changed nothing: the owner still has it.
        assert client.get(url, headers={"Authorization": f"Bearer {mine}"}).status_code == 200
    leaks = []
    for path in COLLECTIONS:
        body = client.get(path, headers={"Authorization": f"Bearer {theirs}"})
        assert body.status_code == 200, (path, body.status_code)
        if any(v in body.text for v in owned.values()):
            leaks.append(path)
        own = client.get(path, headers={"Authorization": f"Bearer {mine}"})
        assert own.status_code == 200 and owned["sub_id"] in own.text, path  # the rows exist
    assert not leaks, f"another subscriber's rows listed in {leaks}"
    # The stream's position is per owner: another's event id as Last-Event-ID neither resumes nor leaks.
    pool = ClickHousePool(data["settings"], size=1)
    try:
        b = theirs.split("_", 2)[1]
        assert alert_events.after(pool, b, owned["event_id"], 0) == []
        assert alert_events.after(pool, b, None, 0) == []
        a = mine.split("_", 2)[1]
        assert [e["id"] for e in alert_events.after(pool, a, None, 0)] == [owned["event_id"]]
    finally:
        pool.close()
