"""Run every benchmark in this folder against the real local services.

Each ``bench_*.py`` prints, as its last line, one JSON object of named figures. This runner runs
them (those in ``SEPARATE`` only when named) one after another (never in parallel: the machine
has two cores), echoes their output, and prints a combined JSON object as its own last line.
Record figures in BENCHMARKS.md.
Usage: ``make bench`` or ``.venv/bin/python benchmarks/run_all.py [name ...]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEPARATE = {"city"}
"""Run only when named (``make bench-city``): minutes of CPU and several GB of memory."""


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(
        p for p in HERE.glob("bench_*.py") if p.stem.removeprefix("bench_") in wanted
        or (not wanted and p.stem.removeprefix("bench_") not in SEPARATE)
    )
    combined: dict[str, object] = {}
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        proc = subprocess.run(  # noqa: S603 - our own scripts
            [sys.executable, str(script)], cwd=HERE.parent, capture_output=True, text=True
        )
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:])
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0 or not lines:
            failed.append(script.name)
            continue
        try:
            figures = json.loads(lines[-1])
        except json.JSONDecodeError:
            failed.append(script.name)
            continue
        combined[script.stem.removeprefix("bench_")] = figures
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    print(json.dumps(combined))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
