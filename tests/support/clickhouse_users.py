"""A per-run API user on the test server, allowed only the public databases the tests give it.

ClickHouse 18.16 has no ``CREATE USER``/``GRANT``: users come from XML files in the ``users.d``
folder beside the server's ``users.xml``, which the server re-reads within a few seconds
(measured ~1 s on 18.16). deploy/local/services.sh puts that folder at ``<state>/clickhouse``;
the folder is found from the server itself (where it keeps ``system`` metadata), so a suite
run from another checkout against the same server provisions the right one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from clickhouse_driver.errors import Error as DriverError
from pydantic import SecretStr

from hexpulse.settings import Settings
from hexpulse.store import connect

_READY_S = 30.0


def users_dir(settings: Settings) -> Path:
    """The ``users.d`` folder of the server ``settings`` points at (created if missing)."""
    client = connect(settings, use_db=False)
    try:
        ((metadata,),) = client.execute(
            "SELECT metadata_path FROM system.tables WHERE database = 'system' LIMIT 1"
        )
    finally:
        client.disconnect()
    root = Path(metadata).parents[3]  # <root>/data/metadata/system/<table>.sql
    if not (root / "users.xml").is_file():
        raise RuntimeError(
            f"the ClickHouse server on port {settings.clickhouse_port} keeps no users.xml in {root}, so the "
            "tests cannot add their API user; run the suite with 'make test' (deploy/local/services.sh)"
        )
    (root / "users.d").mkdir(exist_ok=True)
    return root / "users.d"


@dataclass
class ApiUser:
    """One users.d file: a password-protected, loopback-only user with ``allow_databases``."""

    settings: Settings
    name: str
    folder: Path
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    databases: set[str] = field(default_factory=set)

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}.xml"

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` with this user as the API's ClickHouse user."""
        update = {"api_clickhouse_user": self.name, "api_clickhouse_password": SecretStr(self.password)}
        return settings.model_copy(update=update)

    def allow(self, database: str) -> None:
        """Add ``database`` to the user's allow_databases and wait until the server applies it."""
        if database in self.databases:
            return
        self.databases.add(database)
        self._write()
        deadline = time.monotonic() + _READY_S
        probe = self.settings_for(self.settings).model_copy(update={"clickhouse_database": database})
        while True:
            try:
                client = connect(probe, role="api")
                try:
                    client.execute("SELECT 1")
                    return
                finally:
                    client.disconnect()
            except (DriverError, OSError, EOFError):
                if time.monotonic() > deadline:
                    msg = f"ClickHouse did not load test user {self.name} within {_READY_S:.0f} s"
                    raise RuntimeError(msg) from None
                time.sleep(0.3)
                self._touch()  # a reload keyed on modification times must not miss a quick rewrite

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        allowed = "".join(f"<database>{db}</database>" for db in sorted(self.databases))
        xml = (
            '<?xml version="1.0"?>\n<!-- written by the hexpulse test suite; removed when it ends -->\n'
            f"<yandex><users><{self.name}><password_sha256_hex>{digest}</password_sha256_hex>"
            "<networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>"
            f"<allow_databases>{allowed}</allow_databases></{self.name}></users></yandex>\n"
        )
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(xml)
        os.replace(tmp, self.path)

    def _touch(self) -> None:
        now = time.time()
        os.utime(self.path, (now, now))


_PROVISIONED: dict[str, ApiUser] = {}


def provision(settings: Settings, name: str) -> ApiUser:
    """Create (with no database allowed yet) the suite's API user on the server of ``settings``."""
    user = ApiUser(settings, name, users_dir(settings))
    _PROVISIONED[name] = user
    return user


def allow_api(settings: Settings) -> None:
    """Let the API user of ``settings`` (one this module provisioned) use its public database."""
    user = _PROVISIONED.get(settings.api_clickhouse_user)
    if user is None:
        raise RuntimeError(f"{settings.api_clickhouse_user!r} is not the test suite's API user")
    user.allow(settings.clickhouse_database)
