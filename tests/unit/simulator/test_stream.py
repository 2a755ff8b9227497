"""The simulated message stream: determinism, the batch/order invariant, the ping contract."""

from __future__ import annotations

import math
import time

import orjson
import pytest

from hexpulse.settings import Settings, load_settings
from simulator import MAX_BATCH_SPAN_MS, SimConfig, Simulation, SimulatorConfigError, generate
from simulator.config import parse_duration_s, parse_speed, parse_start_ms
from simulator.malformed import REASONS

START_MS = 1_764_201_600_000  # 2025-11-27T00:00:00Z
SOURCES = {"gnss", "wifi", "cell"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def _sim(settings: Settings, **kw: object) -> Simulation:
    base: dict[str, object] = {"devices": 300, "duration_s": 600.0, "interval_s": 5.0, "start_ms": START_MS}
    return generate(SimConfig(**(base | kw)), settings)  # type: ignore[arg-type]


def test_same_seed_gives_same_bytes(settings: Settings) -> None:
    a = _sim(settings, malformed_rate=0.01)
    b = _sim(settings, malformed_rate=0.01)
    assert list(a.messages()) == list(b.messages())
    assert a.truth.to_json() == b.truth.to_json()
    c = _sim(settings, malformed_rate=0.01, seed=2)
    assert list(c.messages())[:50] != list(a.messages())[:50]


def test_messages_can_be_iterated_twice(settings: Settings) -> None:
    sim = _sim(settings, devices=50)
    assert list(sim.messages()) == list(sim.messages())
    assert len(list(sim.messages())) == len(sim) == sim.truth.counts["messages"]


def _good(sim: Simulation) -> list[tuple[bytes, dict[str, object]]]:
    bad = {m["index"] for m in sim.truth.malformed}
    return [(k, orjson.loads(v)) for i, (k, v) in enumerate(sim.messages()) if i not in bad]


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_batches_span_at_most_20s_and_leave_in_order_of_last_ping(settings: Settings, mode: str) -> None:
    sim = _sim(settings, mode=mode, interval_s=2.0)
    last_seen = -1
    max_ts = -1
    window, lateness = settings.window_ms, settings.lateness_ms
    multi = 0
    for key, doc in _good(sim):
        assert key == str(doc["device"]).encode()
        pings = doc["pings"] if mode == "batch" else [doc]
        assert isinstance(pings, list) and 1 <= len(pings) <= settings.max_batch_pings
        ts = [int(p["ts"]) for p in pings]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        assert ts[-1] - ts[0] <= min(MAX_BATCH_SPAN_MS, lateness)
        assert ts[-1] >= last_seen, "messages must leave in event-time order of their last ping"
        last_seen = ts[-1]
        multi += len(pings) > 1
        # The property the invariant buys: with the watermark max(ts) − lateness (over everything
        # produced so far, so over any partition), no ping's window is already closed.
        max_ts = max(max_ts, ts[-1])
        for t in ts:
            assert max_ts - lateness < t // window * window + window
    assert (multi > 0) == (mode == "batch")


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_record_timestamps_rise_and_close_no_window_early(settings: Settings, mode: str) -> None:
    """Windows close on record timestamps (issue #9): the gateway stamps each message with its last
    ping + the upload delay, in send order, so the partition clock never passes an open ping."""
    sim = _sim(settings, mode=mode, interval_s=2.0)
    stamps = list(sim.record_ts_ms())
    assert len(stamps) == len(sim) and stamps == sorted(stamps)
    bad = {m["index"] for m in sim.truth.malformed}
    window, lateness = settings.window_ms, settings.lateness_ms
    for i, ((_, value), stamp) in enumerate(zip(sim.messages(), stamps, strict=True)):
        if i in bad:
            continue
        doc = orjson.loads(value)
        for p in doc["pings"] if mode == "batch" else [doc]:
            assert stamp - sim.upload_delay_ms <= int(p["ts"]) + sim.config.batch_span_ms(settings)
            assert stamp - lateness < int(p["ts"]) // window * window + window
    assert sim.truth.counts["late"] == 0


def test_batch_span_shrinks_with_a_short_lateness() -> None:
    short = load_settings(lateness_s=5)
    sim = _sim(short, devices=50, interval_s=1.0)
    for _, doc in _good(sim):
        ts = [int(p["ts"]) for p in doc["pings"]]  # type: ignore[union-attr]
        assert ts[-1] - ts[0] <= 5000


def test_every_good_ping_meets_the_contract(settings: Settings) -> None:
    sim = _sim(settings, malformed_rate=0.0)
    seen_fields: set[str] = set()
    n = 0
    for _, doc in _good(sim):
        assert doc["v"] == 1
        for p in doc["pings"]:  # type: ignore[union-attr]
            n += 1
            seen_fields.update(p)
            assert isinstance(p["ts"], int) and START_MS <= p["ts"] < sim.end_ms
            assert -90 <= p["lat"] <= 90 and -180 <= p["lon"] <= 180
            assert 0 <= p.get("acc", 0) <= settings.max_accuracy_m
            assert 0 <= p.get("spd", 0) <= settings.max_speed_mps
            assert 0 <= p.get("hdg", 0) < 360
            assert p.get("src", "gnss") in SOURCES
    assert n == sim.truth.counts["pings"]
    assert seen_fields == {"ts", "lat", "lon", "acc", "spd", "hdg", "src"}


def test_malformed_messages_are_recorded_with_known_reasons(settings: Settings) -> None:
    sim = _sim(settings, malformed_rate=0.05)
    truth = sim.truth
    # The rate is met window by window (each window rounds its own count).
    windows = truth.config["duration_s"] / settings.window_s + 1
    assert len(truth.malformed) == truth.counts["malformed_messages"]
    assert abs(len(truth.malformed) - 0.05 * truth.counts["good_messages"]) <= windows / 2
    assert {m["reason"] for m in truth.malformed} == set(REASONS)  # enough of them to cycle through all
    messages = list(sim.messages())
    for m in truth.malformed:
        key, value = messages[m["index"]]
        if m["reason"] != "message_too_large":
            assert len(value) <= settings.max_message_bytes
        assert key.startswith(b"sim-")
    assert truth.counts["dlq_records"] == truth.counts["outside_area"] + len(truth.malformed)


def test_reason_codes_are_the_ingest_contracts() -> None:
    contract = pytest.importorskip("ingest.contract")
    assert set(REASONS) <= {r.value for r in contract.Reason}


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"devices": 0}, "--devices"),
        ({"duration_s": 5.0}, "--duration"),
        ({"interval_s": 0.0}, "--interval"),
        ({"malformed_rate": 0.9}, "--malformed-rate"),
        ({"stadium_crowd": 301}, "--stadium-crowd"),
        ({"speed": 0.5}, "--speed"),
        ({"center": (95.0, 10.0)}, "--center"),
        ({"start_ms": None, "duration_s": 7 * 3600.0}, "HEXPULSE_MAX_PING_AGE_S"),
    ],
)
def test_bad_options_are_one_sentence(settings: Settings, kw: dict[str, object], fragment: str) -> None:
    with pytest.raises(SimulatorConfigError, match=fragment):
        _sim(settings, **kw)


def test_ground_truth_refuses_a_windows_cap_it_cannot_know() -> None:
    capped = load_settings(windows_per_device_day=10)
    with pytest.raises(SimulatorConfigError, match="WINDOWS_PER_DEVICE_DAY"):
        _sim(capped, devices=10)


def test_default_start_ends_the_run_at_the_wall_clock() -> None:
    now = 1_800_000_000_123
    assert SimConfig(duration_s=600).resolve_start_ms(now) == (now - 600_000) // 1000 * 1000
    assert SimConfig(duration_s=600, speed=1.0).resolve_start_ms(now) == now // 1000 * 1000
    assert SimConfig(duration_s=600, speed=10.0).resolve_start_ms(now) == (now - 540_000) // 1000 * 1000


def test_option_parsers() -> None:
    assert parse_duration_s("15m") == 900 and parse_duration_s("2h") == 7200 and parse_duration_s("90") == 90
    assert parse_speed("realtime") == 1 and math.isinf(parse_speed("max")) and parse_speed("60x") == 60
    assert parse_start_ms("2025-11-27T00:00:00Z") == START_MS == parse_start_ms(str(START_MS))
    assert abs(parse_start_ms("now") - time.time() * 1000) < 60_000
    for bad, fn in (("soon", parse_duration_s), ("fast", parse_speed), ("yesterday", parse_start_ms)):
        with pytest.raises(SimulatorConfigError):
            fn(bad)  # type: ignore[operator]


def test_produce_refuses_runs_ingest_would_reject(settings: Settings) -> None:
    """Checked before any connection is made, so no broker is needed."""
    from simulator import produce

    old = _sim(settings, devices=5, duration_s=60.0)  # starts in 2025
    with pytest.raises(SimulatorConfigError, match="stale_ts"):
        produce(settings, old, progress=None)
    future = _sim(settings, devices=5, duration_s=60.0, start_ms=int(time.time() * 1000) + 3_600_000)
    with pytest.raises(SimulatorConfigError, match="MAX_CLOCK_SKEW_S"):
        produce(settings, future, progress=None)


def test_malformed_reasons_follow_the_check_order_under_tight_limits() -> None:
    """With a byte limit below a 501-ping batch, that message is too large before it is too long."""
    from simulator.malformed import build_malformed

    tight = load_settings(max_message_bytes=4096)
    bad = build_malformed("batch_too_large", "dev-1", START_MS, 23.1, 113.3, tight)
    assert bad.reason == "message_too_large" and len(bad.value) > 4096
    ok = build_malformed("batch_too_large", "dev-1", START_MS, 23.1, 113.3, load_settings())
    assert ok.reason == "batch_too_large" and ok.pings == 501
