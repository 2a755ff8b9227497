"""Options of one simulation run, validated up front with one sentence per problem."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hexpulse.settings import Settings
from hexpulse.times import S_PER_DAY, utc, windows_per_day
from simulator.exceptions import SimulatorConfigError
from simulator.places import DEFAULT_CENTER
from simulator.population import MARKET_SHARE, POPULATION, STADIUM_ATTENDANCE, STADIUM_SEATS

MAX_BATCH_SPAN_MS = 20_000
"""Longest event-time span of one batched message (first to last ping), in ms.

Invariant (tested): a batch spans at most ``min(MAX_BATCH_SPAN_MS, lateness − upload delay)``,
messages leave in order of their last ping's ``ts``, and each record is stamped (CreateTime, as the
gateway a device uploads to would) with its last ping's ``ts`` + the upload delay. So record
timestamps rise in send order, the partition clock at a message is its own record timestamp, and
clock − lateness ≤ last ``ts`` + delay − lateness ≤ any of its pings' ``ts``: its window is still
open and no simulated ping is ever late.
"""

UPLOAD_DELAY_MS = 2_000
"""Time from a message's last ping to its arrival at the gateway (its record timestamp), in ms;
capped at half the lateness (see :meth:`SimConfig.upload_delay_ms`)."""


@dataclass(frozen=True)
class SimConfig:
    """One run. Times in seconds unless named ``_ms`` (epoch milliseconds, UTC).

    ``speed`` is the time compression: 1.0 = real time, ``math.inf`` = as fast as possible.
    ``start_ms`` None means "chosen at generation": the run then ends at the wall clock when
    produced at ``speed`` (real time starts now; ``max`` starts now − duration).
    ``devices`` None means the real density: ``market_share`` of the district's population
    (:mod:`.population`); a number scales the whole city to that many devices.
    ``stadium_crowd`` None means the stadium's seats × attendance × devices per person.
    ``tourist_share`` None means tourists carry devices like everyone (the city's devices per
    person); a share (e.g. ``market_share``) keeps the scenic areas' visitors at that share of
    their real numbers while ``devices`` scales the rest of the city (a day of tourists at real
    numbers with a thin background, benchmarks/bench_tourism.py). ``devices`` still counts them.
    ``interval_s`` is a moving device's ping interval; a device that stands still pings every
    k-th slot instead, k drawn per device from ``idle_every`` (passive feeds report less often
    when nothing changes).
    """

    devices: int | None = None
    duration_s: float = 900.0
    interval_s: float = 20.0
    start_ms: int | None = None
    speed: float = math.inf
    mode: Literal["single", "batch"] = "batch"
    malformed_rate: float = 0.001
    seed: int = 1
    stadium_crowd: int | None = None
    market_share: float = MARKET_SHARE
    idle_every: tuple[int, int] = (3, 6)
    center: tuple[float, float] = DEFAULT_CENTER
    tourist_share: float | None = None

    def validate(self, settings: Settings) -> None:
        """Raise SimulatorConfigError naming the first invalid option."""

        def bad(msg: str) -> SimulatorConfigError:
            return SimulatorConfigError(msg)

        if not 0.0 < self.market_share <= 1.0:
            raise bad(f"--market-share must be in (0, 1], not {self.market_share}")
        if self.tourist_share is not None and not 0.0 < self.tourist_share <= 1.0:
            raise bad(f"tourist_share must be in (0, 1], not {self.tourist_share}")
        n = self.device_count()
        if n < 1:
            raise bad(f"--devices must be at least 1, not {n}")
        if not 1 <= self.idle_every[0] <= self.idle_every[1]:
            raise bad(f"idle_every must be (lo, hi) with 1 ≤ lo ≤ hi, not {self.idle_every}")
        if not 10 <= self.duration_s <= 7 * S_PER_DAY:
            raise bad(f"--duration must be between 10 s and 7 days, not {self.duration_s:g} s")
        if not 0.1 <= self.interval_s <= 3600:
            raise bad(f"--interval must be between 0.1 and 3600 s, not {self.interval_s:g}")
        if not (self.speed >= 1.0):
            raise bad(f"--speed must be 'realtime', 'max' or a factor of at least 1, not {self.speed}")
        if not 0.0 <= self.malformed_rate <= 0.5:
            raise bad(f"--malformed-rate must be between 0 and 0.5, not {self.malformed_rate}")
        if not 0 <= self.seed < 2**63:
            raise bad(f"--seed must be a non-negative integer, not {self.seed}")
        crowd = self.crowd()
        if not 0 <= crowd <= n:
            raise bad(f"--stadium-crowd must be between 0 and the {n} devices, not {crowd}")
        lat, lon = self.center
        if not (-80 <= lat <= 80 and -180 <= lon <= 180):
            raise bad(f"--center must be 'lat,lon' in degrees with |lat| ≤ 80, not {lat},{lon}")
        if settings.windows_per_device_day != windows_per_day(settings.window_s):
            raise bad(
                "the ground truth supports only the default HEXPULSE_WINDOWS_PER_DEVICE_DAY "
                f"({windows_per_day(settings.window_s)}): a smaller cap depends on pseudonyms the simulator "
                "never sees"
            )
        margin_s = 300
        if self.start_ms is None and self.span_behind_now_s() > settings.max_ping_age_s - margin_s:
            raise bad(
                f"a {self.duration_s:g} s run at this speed starts {self.span_behind_now_s():.0f} s in the "
                f"past, beyond HEXPULSE_MAX_PING_AGE_S={settings.max_ping_age_s} (less 300 s): "
                "shorten --duration or slow --speed"
            )

    def device_count(self) -> int:
        """Devices of the run: ``devices``, else the market share of the population."""
        return self.devices if self.devices is not None else round(POPULATION * self.market_share)

    def crowd(self) -> int:
        """Stadium attendees carrying a device of the feed at the event's peak."""
        if self.stadium_crowd is not None:
            return self.stadium_crowd
        return round(STADIUM_SEATS * STADIUM_ATTENDANCE * self.device_count() / POPULATION)

    def span_behind_now_s(self) -> float:
        """How far before "now" the run starts when ``start_ms`` is None (s)."""
        return self.duration_s * (1.0 - 1.0 / self.speed)

    def resolve_start_ms(self, now_ms: int) -> int:
        """Start of event time: given, or chosen so the run ends at the wall clock (whole second)."""
        if self.start_ms is not None:
            return self.start_ms
        return (now_ms - int(self.span_behind_now_s() * 1000)) // 1000 * 1000

    def upload_delay_ms(self, settings: Settings) -> int:
        """Record timestamp − last ping ``ts`` of every message (ms); see MAX_BATCH_SPAN_MS."""
        return min(UPLOAD_DELAY_MS, settings.lateness_ms // 2)

    def batch_span_ms(self, settings: Settings) -> int:
        """Largest event-time span of one message (0 in single mode); see MAX_BATCH_SPAN_MS."""
        if self.mode == "single":
            return 0
        return min(MAX_BATCH_SPAN_MS, settings.lateness_ms - self.upload_delay_ms(settings))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": float(S_PER_DAY)}


def parse_duration_s(text: str, option: str = "--duration") -> float:
    """``"900"``, ``"90s"``, ``"15m"``, ``"2h"`` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise SimulatorConfigError(f"{option} must look like 900, 90s, 15m or 2h, not {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_speed(text: str) -> float:
    """``realtime`` → 1, ``max`` → inf, ``"60"``/``"60x"`` → 60."""
    value = text.strip().lower()
    if value == "realtime":
        return 1.0
    if value == "max":
        return math.inf
    value = value.removesuffix("x")
    try:
        factor = float(value)
    except ValueError:
        factor = math.nan
    if not factor >= 1.0 or math.isinf(factor):
        raise SimulatorConfigError(
            f"--speed must be 'realtime', 'max' or a factor ≥ 1 such as 60, not {text!r}"
        )
    return factor


def parse_start_ms(text: str) -> int:
    """``now``, ``now+90s`` (a duration from now), epoch milliseconds, or an ISO-8601 time (UTC
    unless it names an offset)."""
    stripped = text.strip()
    if stripped.lower() == "now":
        return int(time.time()) * 1000
    if stripped.lower().startswith("now+"):
        return (int(time.time()) + int(parse_duration_s(stripped[4:], "--start now+"))) * 1000
    if stripped.isdigit():
        return int(stripped)
    try:
        when = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise SimulatorConfigError(
            f"--start must be 'now', 'now+90s', epoch ms or an ISO time like 2026-11-27T08:00:00Z, "
            f"not {text!r}"
        ) from None
    return int(utc(when).timestamp() * 1000)


def parse_center(text: str) -> tuple[float, float]:
    """``"23.13,113.32"`` → (lat, lon)."""
    try:
        lat_s, lon_s = text.split(",")
        return float(lat_s), float(lon_s)
    except ValueError:
        raise SimulatorConfigError(f"--center must be 'lat,lon' in degrees, not {text!r}") from None
