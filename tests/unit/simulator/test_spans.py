"""The streaming generator: the same seed gives the same messages and ground truth whether the
run is generated in one piece or span by span, and a span holds only its own event time."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hexpulse.settings import Settings, load_settings
from simulator import SimConfig, generate
from simulator.stream import CityStream

START_MS = 1_764_201_600_000 + 17_250  # not on a window boundary: the first span is partial


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def _config(**kw: object) -> SimConfig:
    base: dict[str, object] = {
        "devices": 2500,
        "duration_s": 420.0,
        "interval_s": 10.0,
        "start_ms": START_MS,
        "malformed_rate": 0.01,
    }
    return SimConfig(**(base | kw))  # type: ignore[arg-type]


def _streamed(
    cfg: SimConfig, settings: Settings, span_windows: int, **kw: object
) -> tuple[list[object], bytes]:
    stream = CityStream(cfg, settings, span_windows=span_windows, **kw)  # type: ignore[arg-type]
    rows: list[object] = []
    for span in stream.spans():
        rows.extend(zip(span.messages(), span.record_ts_ms(), strict=True))
    return rows, stream.finish().to_json()


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_one_piece_and_spans_give_the_same_stream_and_truth(settings: Settings, mode: str) -> None:
    cfg = _config(mode=mode)
    sim = generate(cfg, settings)
    whole = list(zip(sim.messages(), sim.record_ts_ms(), strict=True))
    assert sim.truth.counts["malformed_messages"] > 0 and sim.truth.counts["pings_by_kind"]["vehicle"] > 0
    for span_windows in (1, 3):
        rows, truth = _streamed(cfg, settings, span_windows)
        assert rows == whole
        assert truth == sim.truth.to_json()


def test_spans_cut_at_window_boundaries_and_hold_their_own_pings(settings: Settings) -> None:
    stream = CityStream(_config(), settings, span_windows=2)
    cuts = stream.bounds_ms()
    w = settings.window_ms
    assert cuts[0] == START_MS and cuts[-1] == START_MS + 420_000
    assert all(c % (2 * w) == START_MS // w * w % (2 * w) for c in cuts[1:-1])
    for span, a, b in zip(stream.spans(), cuts[:-1], cuts[1:], strict=True):
        assert span.pings.ts_ms.min() >= a and span.pings.ts_ms.max() < b
        # A message never crosses its span: its pings are one device's, in one window.
        for lo, hi in zip(span.plan.lo.tolist(), span.plan.hi.tolist(), strict=True):
            assert len(set((span.pings.ts_ms[lo:hi] // w).tolist())) == 1


def test_truth_rows_are_written_per_span_and_match(settings: Settings, tmp_path: Path) -> None:
    cfg = _config(duration_s=240.0)
    sink = tmp_path / "truth.windows.jsonl"
    rows, truth = _streamed(cfg, settings, 1, truth_sink=sink, keep_rows=False)
    lines = [orjson.loads(x) for x in sink.read_bytes().splitlines()]
    whole = generate(cfg, settings).truth
    assert [c for line in lines for c in line["cells"]] == whole.cells
    assert [c for line in lines for c in line["stadium"]] == whole.stadium["curve"]
    assert [c for line in lines for c in line["corridors"]] == whole.traffic["corridors"]
    doc = orjson.loads(truth)
    assert doc["cells"] == [] and doc["windows_file"] == str(sink)
    assert doc["counts"] == whole.counts


def test_spans_must_follow_on(settings: Settings) -> None:
    stream = CityStream(_config(duration_s=120.0), settings)
    stream.city.pings(0.0, 30.0)
    with pytest.raises(ValueError, match="follow on"):
        stream.city.pings(40.0, 60.0)


def test_a_stream_without_truth_sends_the_same_messages(settings: Settings) -> None:
    cfg = _config(duration_s=180.0)
    with_truth, _ = _streamed(cfg, settings, 1)
    stream = CityStream(cfg, settings, truth=False)
    rows: list[object] = []
    for span in stream.spans():
        rows.extend(zip(span.messages(), span.record_ts_ms(), strict=True))
    assert rows == with_truth
    assert stream.pings_per_s() > 0
    with pytest.raises(ValueError, match="without its ground truth"):
        stream.finish()
