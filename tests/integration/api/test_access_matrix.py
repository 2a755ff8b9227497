"""The access matrix (issue #15): every documented route × (no key, malformed key, revoked key,
a key of another scope, a key of the right scope) answers 401/401/401/403/neither. The routes are
read from the app's own OpenAPI document, so a new route that answers without a key fails here
until it is listed as open, and one that no single-scope key is refused fails as unscoped.

Not covered yet, because the API has no such thing today: expired keys (keys have no expiry) and
another subscriber's resource (no route owns per-subscriber resources; the alert subscriptions of
issue #14 will). ``OWNED`` below is where those routes go, each with a resource of another key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.api import CELLS9, bbox_of, private_settings, seed

pytestmark = pytest.mark.integration

# Documented routes anyone may call: the probes. (The dashboard shell, its config and the public
# privacy page are open too and are not in the OpenAPI document.)
OPEN = {"/healthz", "/readyz"}
# Endless responses → the one key of another scope to try; their success is test_live.py's.
STREAMS = {"/v1/density/stream": "traffic", "/v1/alerts/stream": "traffic"}
# Per-subscriber resources: path → (owner's key name, the resource's path). None exist yet.
OWNED: dict[str, tuple[str, str]] = {}
# A plausible value for every required query parameter, so a refusal is the key's, not the query's.
QUERY = {"bbox": bbox_of(CELLS9, 0.01), "cell": f"{CELLS9[0]:x}"}
SINGLE_SCOPE = ("density", "traffic")  # keys of the seed holding one non-admin scope each

Route = tuple[str, str]


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = private_settings(migrated, "apim", api_key_cache_s=0.0, rate_limit_per_min=1_000_000)
    d = seed(settings)
    revoked = d["store"].create("revoked", ["admin"])[1]
    d["store"].revoke(revoked.split("_", 2)[1])
    d["tokens"]["revoked"] = revoked
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
        for case, token in (("malformed key", "hxp_nonsense"), ("revoked key", tokens["revoked"])):
            if (got := call(client, method, path, token)) != 401:
                wrong.append(f"{method} {path} [{case}]: {got}")
        names = (STREAMS[path],) if path in STREAMS else (*SINGLE_SCOPE, "admin")
        keyed = {name: call(client, method, path, tokens[name]) for name in names}
        if 403 not in keyed.values():
            wrong.append(f"{method} {path}: no key of another scope is refused: {keyed}")
        if any(code == 401 or code >= 500 for code in keyed.values()) or keyed.get("admin", 200) == 403:
            wrong.append(f"{method} {path}: valid keys got {keyed}")
    assert not wrong, "\n".join(wrong)


def test_owned_resources_are_not_found_for_other_keys(
    matrix: tuple[TestClient, list[Route]], data: dict[str, Any]
) -> None:
    client, _ = matrix
    for path, (owner, resource) in OWNED.items():
        other = next(name for name in SINGLE_SCOPE if name != owner)
        assert call(client, "GET", resource, data["tokens"][other]) == 404, path
