"""Cost of the key path: one pseudonym (keyed BLAKE2b, cached day hasher), one DLQ seal, one ring
reload. Prints one JSON object as its last line: ``pseudonymize_us``, ``seal_200b_us``,
``ring_reload_ms`` (medians of 5 repetitions, one process, no services needed).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from hexpulse.times import MS_PER_DAY
from privacy.keys.keyring import KeyRing
from privacy.keys.pseudonyms import RotatingPseudonymizer
from privacy.keys.sealing import PayloadSealer

N_PSEUDO = 300_000
N_SEAL = 30_000
N_RELOAD = 200


def main() -> None:
    path = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "keyring.bin"
    ring = KeyRing(path, bytes(range(32)), 2)
    pz = RotatingPseudonymizer(ring)
    sealer = PayloadSealer(ring)
    day = int(time.time() * 1000) // MS_PER_DAY
    devices = [f"upstream-device-{i:08d}-abcdef".encode() for i in range(1000)] * (N_PSEUDO // 1000)
    days = [day] * len(devices)
    pz.pseudonymize(devices[0], day)
    payload = b"x" * 200
    sealer.seal(payload)

    pseudo, seal, reload = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        list(map(pz.pseudonymize, devices, days))  # how ingest calls it
        pseudo.append((time.perf_counter() - t0) / len(devices) * 1e6)
        t0 = time.perf_counter()
        for _ in range(N_SEAL):
            sealer.seal(payload)
        seal.append((time.perf_counter() - t0) / N_SEAL * 1e6)
        t0 = time.perf_counter()
        for _ in range(N_RELOAD):
            ring.reload()
        reload.append((time.perf_counter() - t0) / N_RELOAD * 1e3)
    print(
        json.dumps(
            {
                "pseudonymize_us": round(statistics.median(pseudo), 3),
                "seal_200b_us": round(statistics.median(seal), 2),
                "ring_reload_ms": round(statistics.median(reload), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
