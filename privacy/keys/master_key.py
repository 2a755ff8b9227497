"""The master key: 32 bytes from ``HEXPULSE_MASTER_KEY`` or a key file, never from ClickHouse.

The master key only wraps the key ring and is mixed into every day key (docs/KEYS.md). There is no
fallback: without a valid master key nothing that needs keys starts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from hexpulse.settings import Settings
from privacy.keys.exceptions import MasterKeyError

KEY_BYTES = 32


def decode_key_text(text: str) -> bytes:
    """32 key bytes from hex (64 digits) or base64 (standard or URL-safe) text; else ValueError."""
    text = text.strip()
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            return bytes.fromhex(text)
    alt = b"-_" if ("-" in text or "_" in text) else None
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=alt, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("it is neither 64 hex digits nor base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"it decodes to {len(raw)} bytes, not {KEY_BYTES}")
    return raw


def load_master_key(settings: Settings) -> bytes:
    """The master key from ``settings.master_key`` or ``settings.resolved_master_key_file()``."""
    if settings.master_key is not None:
        try:
            return decode_key_text(settings.master_key.get_secret_value())
        except ValueError as exc:
            raise MasterKeyError(f"HEXPULSE_MASTER_KEY is not a valid 32-byte key: {exc}.") from None
    path = settings.resolved_master_key_file()
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        hint = "run 'hexpulse keyring init'" if settings.environment == "development" else "provision it"
        raise MasterKeyError(
            f"no master key: set HEXPULSE_MASTER_KEY or create the key file {path} ({hint})."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise MasterKeyError(f"the master key file {path} cannot be read ({reason}).") from None
    try:
        return decode_key_text(text)
    except ValueError as exc:
        raise MasterKeyError(
            f"the master key file {path} does not hold a valid 32-byte key: {exc}."
        ) from None


def create_master_key_file(path: Path) -> bool:
    """Write a new random key (base64, mode 0600) unless ``path`` exists; True if created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True
