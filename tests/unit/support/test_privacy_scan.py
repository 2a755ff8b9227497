"""The leak scanner finds planted leaks and passes clean data (so the scan test can fail)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tests.support.privacy_scan import RunSecrets, scan_lines, scan_records, scan_rows

DEVICE = "upstream-7f3a9c21-device"
PSEUDO = 0xF1E2D3C4B5A69788  # >= 2**63: also stored as a negative Int64
LAT, LON = 69.648513, 18.957204


def secrets() -> RunSecrets:
    return RunSecrets(devices={DEVICE}, pseudonyms={PSEUDO}, coordinates={LAT, LON})


def test_planted_leaks_are_found() -> None:
    s = secrets()
    cols = ["a", "b", "c"]
    planted = [
        (DEVICE, 1, 2.0),
        ("x", PSEUDO, 0.5),
        ("x", PSEUDO - 2**64, 0.5),
        ("x", 3, LAT),
        ("x", 3, round(LON, 4)),
        ("x", int(round(LAT * 1e6)), 0.0),
        ("x", 3, float(np.float32(LON))),  # LON stored in a Float32 column
        ("x", 3, float(np.float32(round(LAT, 4)))),
        ("x", 3, 69.6485),  # truncated to 4 decimals
        (DEVICE.encode(), 0, 0.0),
        (PSEUDO.to_bytes(8, "little"), 0, 0.0),
        ([f"{LAT}"], 0, 0.0),
    ]
    for row in planted:
        assert scan_rows(s, "t", cols, [row]), row

    lines = [
        f'{{"event":"x","device":"{DEVICE}"}}',
        f'{{"event":"x","pseudonym":{PSEUDO}}}',
        f'{{"event":"x","p":"{PSEUDO:016x}"}}',
        f'{{"event":"x","lat":{LAT}}}',
        f'{{"event":"x","lon":{LON:.4f}}}',
    ]
    for line in lines:
        assert scan_lines(s, "log", [line]), line
    rec = SimpleNamespace(partition=0, offset=1, key=None, value=b"", headers=[("dev", DEVICE.encode())])
    assert scan_records(s, "dlq", [rec])


def test_clean_data_passes() -> None:
    s = secrets()
    clean_rows = [
        ("window released", 1_764_201_600, 12.345),
        ("ok", 8_613_104_519_200_000_000, round(LAT, 3)),  # a coordinate at 3 decimals is allowed
        (b"\x00\x01sealed-bytes", 42, 31.4159),
        (None, True, float("nan")),
    ]
    assert scan_rows(s, "t", ["a", "b", "c"], clean_rows) == []
    clean_lines = [
        '{"ts":"2026-11-27T23:59:59.123Z","level":"info","event":"window released","lag_s":1.234}',
        'hexpulse_ingest_pings_total{outcome="accepted"} 1234.0',
        f"cell area {round(LAT, 3)} {round(LON, 2)}",
    ]
    assert scan_lines(s, "log", clean_lines) == []
