"""``hexpulse keyring …`` end to end in a subprocess: one sentence on error, no secrets printed."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from privacy.keys.keyring import KeyRing
from privacy.keys.master_key import decode_key_text


def hexpulse(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_")}
    return subprocess.run(
        [sys.executable, "-c", "from hexpulse.cli import main; main()", "keyring", *args],
        env=clean | {"HEXPULSE_STATE_DIR": str(state)} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_status_and_refusals(tmp_path: Path) -> None:
    missing = hexpulse(tmp_path, "status")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"hexpulse: no master key: set HEXPULSE_MASTER_KEY or create the key file {tmp_path / 'master.key'} "
        "(run 'hexpulse keyring init')."
    ]

    init = hexpulse(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    key_file = tmp_path / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keyring.bin").stat().st_mode & 0o777 == 0o600
    assert hexpulse(tmp_path, "init").returncode == 0  # idempotent
    master = decode_key_text(key_file.read_text())

    status = hexpulse(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "days held: " in status.stdout
    state = KeyRing(tmp_path / "keyring.bin", master, 2).reload()
    assert state is not None and len(state.days) == 2
    printed = status.stdout + status.stderr
    for secret in [master, *state.days.values()]:
        assert base64.b64encode(secret).decode() not in printed
        assert secret.hex() not in printed

    wrong = hexpulse(tmp_path, "status", HEXPULSE_MASTER_KEY=bytes(32).hex())
    assert wrong.returncode == 2
    assert "does not decrypt with this master key" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    prod = hexpulse(
        tmp_path / "prod",
        "init",
        HEXPULSE_ENVIRONMENT="production",
        HEXPULSE_MASTER_KEY_FILE=str(tmp_path / "prod" / "m.key"),
        HEXPULSE_CLICKHOUSE_PASSWORD="s3cret-pw",  # noqa: S106 (a test value)
    )
    assert prod.returncode == 2
    assert "only in development" in prod.stderr
    assert not (tmp_path / "prod" / "m.key").exists()


def test_rotate_and_destroy_expired(tmp_path: Path) -> None:
    assert hexpulse(tmp_path, "init").returncode == 0
    rotate = hexpulse(tmp_path, "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert "created keys for days none; destroyed none" in rotate.stdout
    destroy = hexpulse(tmp_path, "destroy-expired")
    assert destroy.returncode == 0 and "destroyed keys of days none" in destroy.stdout
