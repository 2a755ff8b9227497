"""API keys: creation, hashing, lookup and revocation (table ``api_keys``, migration 0003).

A key reads ``hxp_<key_id>_<secret>``. ``key_id`` (12 hex) is public and indexes the row; the
secret (32 random bytes, URL-safe base64) is shown once at creation and stored only as
HKDF-SHA256(secret, per-key salt). HKDF rather than scrypt because the secret is 256 random bits,
not a password: a slow KDF adds nothing against brute force and would cost every request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.exceptions import AuthenticationError, BadRequestError, NotFoundError
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import naive_utc_now

SCOPES: tuple[str, ...] = ("density:read", "traffic:read", "tourism:read", "alerts:write", "admin")
_PREFIX = "hxp"
_INFO = b"hexpulse-api-key-v1"
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked: bool
    salt: bytes
    digest: bytes
    expires_at: datetime | None = None  # naive UTC; None: never

    def expired(self, now: datetime) -> bool:
        """Whether the key is past its expiry at ``now`` (naive UTC)."""
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def digest(secret: str, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(secret.encode())


def split_token(token: str) -> tuple[str, str]:
    """``hxp_<key_id>_<secret>`` → (key_id, secret); AuthenticationError when malformed."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or len(parts[1]) != 12 or not parts[2]:
        raise AuthenticationError("the API key is malformed; expected 'Bearer hxp_<id>_<secret>'")
    return parts[1], parts[2]


class KeyStore:
    """Keys in ClickHouse, with an in-process snapshot refreshed every ``cache_s`` seconds.

    Revoking a key therefore takes effect within ``cache_s`` (default 5 s) in every API process.
    """

    def __init__(self, pool: ClickHousePool, cache_s: float) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._keys: dict[str, ApiKey] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _load(self) -> dict[str, ApiKey]:
        rows = self._pool.query(
            "SELECT key_id, name, scopes, created_at, revoked, salt, digest, expires_at FROM api_keys FINAL"
        )
        return {
            r[0]: ApiKey(
                r[0], r[1], frozenset(r[2]), r[3], bool(r[4]), bytes.fromhex(r[5]), bytes.fromhex(r[6]),
                None if r[7].replace(tzinfo=None) <= _EPOCH else r[7].replace(tzinfo=None),
            )
            for r in rows
        }  # fmt: skip

    def snapshot(self, force: bool = False) -> dict[str, ApiKey]:
        now = time.monotonic()
        if force or now - self._loaded_at >= self._cache_s:
            with self._lock:
                if force or now - self._loaded_at >= self._cache_s:
                    self._keys = self._load()
                    self._loaded_at = time.monotonic()
        return self._keys

    @property
    def fresh(self) -> bool:
        """True when :meth:`verify` will not need to read ClickHouse."""
        return time.monotonic() - self._loaded_at < self._cache_s

    def verify(self, token: str) -> ApiKey:
        """The active key for a bearer token; AuthenticationError otherwise (one message for all)."""
        key_id, secret = split_token(token)
        key = self.snapshot().get(key_id)
        if key is None or key.revoked or not hmac.compare_digest(digest(secret, key.salt), key.digest):
            raise AuthenticationError("the API key is unknown or revoked")
        if key.expired(naive_utc_now()):  # told only to a holder of the secret
            raise AuthenticationError(f"the API key expired at {key.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
                                      "create a new one")  # fmt: skip
        return key

    def create(
        self, name: str, scopes: list[str], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """Store a new key; return it with the full token (shown once, never stored).
        ``expires_at`` (naive UTC; None: never) is when the API stops accepting it."""
        name = name.strip()
        if not name or len(name) > 100:
            raise BadRequestError("a key needs a name of 1 to 100 characters")
        unknown = sorted(set(scopes) - set(SCOPES))
        if not scopes or unknown:
            raise BadRequestError(f"scopes must be among {', '.join(SCOPES)}; got {unknown or 'none'}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        key = ApiKey(key_id, name, frozenset(scopes), naive_utc_now(), False, salt, digest(secret, salt),
                     expires_at)  # fmt: skip
        self._write(key, version=1)
        self.snapshot(force=True)
        return key, f"{_PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        key = self.snapshot(force=True).get(key_id)
        if key is None:
            raise NotFoundError(f"no API key with id {key_id!r}")
        revoked = replace(key, revoked=True)
        self._write(revoked, version=time.time_ns())
        self.snapshot(force=True)
        return revoked

    def _write(self, key: ApiKey, version: int) -> None:
        self._pool.insert(
            "INSERT INTO api_keys (key_id, name, salt, digest, scopes, created_at, revoked, revoked_at,"
            " version, expires_at) VALUES",
            [
                (
                    key.key_id,
                    key.name,
                    key.salt.hex(),
                    key.digest.hex(),
                    sorted(key.scopes),
                    key.created_at,
                    int(key.revoked),
                    naive_utc_now() if key.revoked else _EPOCH,
                    version,
                    key.expires_at or _EPOCH,
                )
            ],
        )
