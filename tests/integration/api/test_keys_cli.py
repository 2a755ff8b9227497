"""`hexpulse keys create | list | revoke` end to end (subprocess, real ClickHouse)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from api.exceptions import AuthenticationError
from api.keys import KeyStore
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from tests.support.api import private_settings

pytestmark = pytest.mark.integration

HEXPULSE = str(Path(sys.executable).parent / "hexpulse")


@pytest.fixture(scope="module")
def settings(migrated: Settings) -> Iterator[Settings]:
    cfg = private_settings(migrated, "apik")
    yield cfg
    drop_database(cfg)


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database}
    return subprocess.run(
        [HEXPULSE, "keys", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_create_list_revoke(settings: Settings) -> None:
    created = run(
        settings, "create", "--name", "wall-1", "--scope", "density:read", "--scope", "traffic:read"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    # The secret is url-safe base64 and may itself contain "_", so split at most twice.
    _, key_id, secret = token.split("_", 2)
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)
    assert store.verify(token).scopes == {"density:read", "traffic:read"}
    listed = run(settings, "list")
    assert key_id in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    assert run(settings, "revoke", key_id).returncode == 0
    assert "revoked" in run(settings, "list").stdout
    with pytest.raises(AuthenticationError):
        store.verify(token)


def test_bad_scope_and_unknown_key_are_one_sentence(settings: Settings) -> None:
    bad = run(settings, "create", "--name", "x", "--scope", "everything")
    assert bad.returncode == 2 and "scopes must be among" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run(settings, "revoke", "000000000000")
    assert unknown.returncode == 2 and "no API key" in unknown.stderr and "Traceback" not in unknown.stderr
    quiet = run(settings, "create", "--name", "script", "--scope", "admin", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("hxp_")


def test_a_key_with_an_expiry_is_listed_with_it_and_refused_after(settings: Settings) -> None:
    created = run(settings, "create", "--name", "temp", "--scope", "density:read", "--expires-days", "0.0001")
    assert created.returncode == 0 and "expires 20" in created.stderr, created.stderr
    token = created.stdout.strip()
    key_id = token.split("_", 2)[1]
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)
    line = next(ln for ln in run(settings, "list").stdout.splitlines() if ln.startswith(key_id))
    assert "active until" in line or "expired" in line  # 8.6 s: the list may come after it
    time.sleep(max(0.0, 8.64 - (time.time() - started(store, key_id))))
    with pytest.raises(AuthenticationError, match="expired at"):
        store.verify(token)
    assert "expired" in next(ln for ln in run(settings, "list").stdout.splitlines() if ln.startswith(key_id))
    bad = run(settings, "create", "--name", "x", "--scope", "density:read", "--expires-days", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def started(store: KeyStore, key_id: str) -> float:
    """The key's creation time (epoch s)."""
    return store.snapshot(force=True)[key_id].created_at.replace(tzinfo=UTC).timestamp()
