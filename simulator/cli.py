"""``hexpulse simulate``: generate the simulated city, write its ground truth, feed Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from hexpulse.kafka import ensure_topics
from hexpulse.settings import get_settings
from simulator.config import SimConfig, parse_center, parse_duration_s, parse_speed, parse_start_ms
from simulator.exceptions import SimulatorConfigError
from simulator.geo import LocalFrame
from simulator.places import zones_geojson
from simulator.population import MARKET_SHARE
from simulator.producer import produce_stream, stderr_progress
from simulator.stream import CityStream


def simulate(
    devices: Annotated[
        int | None,
        typer.Option(
            help="Number of simulated devices (default: the market share of the district's population)."
        ),
    ] = None,
    market_share: Annotated[
        float, typer.Option(help="Share of the population in the feed, used when --devices is not given.")
    ] = MARKET_SHARE,
    duration: Annotated[str, typer.Option(help="Event-time length of the run: 900, 90s, 15m, 2h.")] = "15m",
    start: Annotated[
        str | None,
        typer.Option(
            help="Event time of the start (epoch ms or ISO-8601, UTC); default: so the run ends now."
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="Seconds between a moving device's pings (±20 % jitter); still: 3–6×.")
    ] = 20.0,
    speed: Annotated[
        str, typer.Option(help="Time compression: realtime, a factor such as 60, or max.")
    ] = "max",
    mode: Annotated[
        str, typer.Option(help="single (one ping per message) or batch (≤ 20 s per message).")
    ] = "batch",
    malformed_rate: Annotated[float, typer.Option(help="Malformed messages per good message.")] = 0.001,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and options → same messages.")] = 1,
    stadium_crowd: Annotated[
        int | None,
        typer.Option(
            help="Devices at the stadium event's peak (default: 55,000 seats × 90 % × devices per person)."
        ),
    ] = None,
    center: Annotated[str, typer.Option(help="City center 'lat,lon' in degrees.")] = "23.13,113.32",
    topic: Annotated[str | None, typer.Option(help="Kafka topic (default HEXPULSE_TOPIC_PINGS).")] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth JSON file (default <state_dir>/simulator/truth.json).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Generate and write the truth; send nothing.")
    ] = False,
    skip_truth: Annotated[
        bool, typer.Option("--skip-truth", help="Compute no ground truth (less CPU; the same messages).")
    ] = False,
    sender: Annotated[
        str, typer.Option(help="Kafka client: auto (librdkafka when installed), librdkafka, kafka-python.")
    ] = "auto",
    zones_out: Annotated[
        Path | None,
        typer.Option(help="Also write the city's registered zones (GeoJSON) here ('hexpulse zones load')."),
    ] = None,
) -> None:
    """Simulate a city's devices (commuters, traffic, a stadium event, tourists) and produce their pings."""
    settings = get_settings()
    if mode not in ("single", "batch"):
        raise SimulatorConfigError(f"--mode must be 'single' or 'batch', not {mode!r}")
    chosen: Literal["single", "batch"] = "single" if mode == "single" else "batch"
    config = SimConfig(
        devices=devices,
        market_share=market_share,
        duration_s=parse_duration_s(duration),
        interval_s=interval,
        start_ms=parse_start_ms(start) if start is not None else None,
        speed=parse_speed(speed),
        mode=chosen,
        malformed_rate=malformed_rate,
        seed=seed,
        stadium_crowd=stadium_crowd,
        center=parse_center(center),
    )
    if zones_out is not None:
        zones_out.parent.mkdir(parents=True, exist_ok=True)
        doc = zones_geojson(LocalFrame(*config.center))
        zones_out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        stderr_progress(f"simulate: the city's registered zones: {zones_out}")
    t0 = time.monotonic()
    path = truth or settings.state_dir / "simulator" / "truth.json"
    # One window per span: memory follows a minute of the city, and the per-window truth is on
    # disk (truth.windows.jsonl) as soon as the window is generated.
    sink = None if skip_truth else path.with_suffix(".windows.jsonl")
    stream = CityStream(config, settings, truth_sink=sink, truth=not skip_truth)
    stderr_progress(
        f"simulate: {stream.devices:,} devices, {config.duration_s:g} s of event time from "
        f"{stream.start_ms} ms; city set up in {time.monotonic() - t0:.1f} s; producing"
        + (" nothing (--dry-run)" if dry_run else f" to {topic or settings.topic_pings}")
    )
    if dry_run:
        for _ in stream.spans():
            pass
        report = None
    else:
        # The target topic exists or is created like `hexpulse topics` would (configured partitions).
        ensure_topics(settings, [topic or settings.topic_pings])
        report = produce_stream(settings, stream, topic=topic, sender=sender)
    peak = ""
    if not skip_truth:
        result = stream.finish()
        result.write(path)
        counts = result.counts
        stderr_progress(
            f"simulate: {counts['devices']:,} devices, {counts['pings'] / config.duration_s:,.0f} pings/s "
            f"of event time; {counts['pings']:,} pings in {counts['messages']:,} messages "
            f"({counts['malformed_messages']:,} malformed); truth: {path}"
        )
        peak = f" (stadium peak {result.stadium['peak']:,} devices); ground truth: {path}"
    if report is None:
        return
    typer.echo(
        f"produced {report.messages:,} messages to {report.topic} in {report.seconds:.1f} s: "
        f"{report.devices:,} devices, {report.pings_per_s:,.0f} pings/s sustained ({report.sender}), "
        f"behind real time p95 {report.behind_s_p95:.1f} s, max {report.behind_s_max:.1f} s" + peak
    )
