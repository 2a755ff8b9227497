"""The entry point: a usage mistake is one sentence and exit code 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _hexpulse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from hexpulse.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "sentence"),
    [(("nosuch",), "No such command 'nosuch'."), (("release", "--bogus"), "No such option: --bogus")],
)
def test_usage_errors_are_one_sentence(args: tuple[str, ...], sentence: str) -> None:
    done = _hexpulse(*args)
    assert done.returncode == 2
    assert f"Error: {sentence}" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_every_command_without_importing_a_stage() -> None:
    done = _hexpulse("--help")
    assert done.returncode == 0
    for name in ("migrate", "topics", "simulate", "consume", "release", "api", "keyring", "keys"):
        assert name in done.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hexpulse.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'ingest', 'aggregate', 'privacy', 'api', 'simulator'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
