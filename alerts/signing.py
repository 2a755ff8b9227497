"""Webhook signatures as the Standard Webhooks specification defines them.

Headers ``webhook-id``, ``webhook-timestamp`` (integer seconds since the epoch) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``, one per
secret while a secret is rotated (receivers accept any). Secrets are ``whsec_`` + base64 of the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
#: Receivers should refuse messages whose timestamp is further than this from their clock (s).
TOLERANCE_S = 300


class SignatureError(ValueError):
    """A secret or a signed message that does not verify."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret (24 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret, or SignatureError."""
    if not secret.startswith(PREFIX):
        raise SignatureError("a webhook secret starts with 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("a webhook secret's part after 'whsec_' must be base64") from exc
    if not 16 <= len(key) <= 64:
        raise SignatureError("a webhook secret's key must be 16 to 64 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body``."""
    content = f"{msg_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def headers(secrets_: tuple[str, ...], msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three headers of a message signed with every secret in ``secrets_`` (rotation)."""
    if not secrets_:
        raise SignatureError("a webhook needs at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp_s, body) for s in secrets_),
    }


def verify(secret: str, hdrs: dict[str, str], body: bytes, now_s: int) -> None:
    """Check a received message as a receiver does; SignatureError says why it fails."""
    lower = {k.lower(): v for k, v in hdrs.items()}
    try:
        msg_id, ts = lower["webhook-id"], int(lower["webhook-timestamp"])
        sent = lower["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise SignatureError("missing or malformed webhook headers") from exc
    if abs(now_s - ts) > TOLERANCE_S:
        raise SignatureError("the message timestamp is too far from now")
    expected = sign(secret, msg_id, ts, body)
    if not any(hmac.compare_digest(expected, s) for s in sent if s.startswith("v1,")):
        raise SignatureError("no signature matches")
