"""Scores of benchmarks/bench_city.py: what the API serves and the alert evaluator decides,
against the simulator's ground truth.

Traffic (issue #12), two rows: corridors (the zones of set ``corridor`` the API serves, the
headline) and res-8 cells, each segment scored in the windows where it has ≥ 100 truly moving
devices: ``traffic_speed_mae_kmh`` |served mean speed − true mean speed| (a segment served
without a speed is counted apart, ``without_speed``); ``congestion_level_exact`` / ``_within_one``
served level vs the truth's (a level the API leaves out counts as wrong);
``incident_detect_windows`` windows from the one holding the incident's start to the first whose
incident corridor (cells row: one of the res-8 cells its cover touches) reads heavy or worse;
``city_index_rel_err`` the median over windows of |served city index − true index| / true index,
the served index from ``/v1/traffic/index`` (``set=corridor``: corridors; ``set=none``: cells
only), the true one travel-time weighted over the same segments (those served with a free flow),
Σ n/v ÷ Σ n/v_free with each segment's true moving devices n, mean speed v and free flow v_free.

Alerts (issue #13): precision and recall of the events the real evaluator wrote, matched to the
events of the same state machine run on the true zone values (σ = 0): same subscription and
transition within ``min_windows`` windows. Only true crossings with ≥ 10 % margin are scored
(:func:`margin_ok`); an emitted event matching only an unscored one counts neither way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import h3

from alerts.levels import Level, Rule, State, step
from hexpulse.traffic_levels import level_of

LEVELS = ("free", "light", "moderate", "heavy", "severe")
MIN_MOVING = 100
MARGIN = 0.10


def iso(epoch_s: int) -> str:
    return f"{datetime.fromtimestamp(epoch_s, UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass
class SegmentScore:
    """Running sums of the traffic figures of one kind of segment (res-8 cells or corridors) over
    the scored windows: truth rows ``[window_ms, key, moving, mean_kmh, free_flow_kmh, level]``
    against the served objects by key."""

    speed_err: list[float] = field(default_factory=list)
    levels: list[tuple[str, str | None]] = field(default_factory=list)  # (truth, served)
    moving: list[int] = field(default_factory=list)  # true moving devices of each scored segment
    true_ff_levels: list[tuple[str, str | None]] = field(default_factory=list)  # diagnostic, below
    no_speed: int = 0
    groups: list[str] = field(default_factory=list)  # e.g. a corridor's road, for by_group()

    def add(self, truth: Iterable[list[Any]], served: dict[Any, dict[str, Any]],
            group_of: dict[Any, str] | None = None) -> None:  # fmt: skip
        for _, key, moving, mean, ff, level in truth:
            if moving < MIN_MOVING:
                continue
            self.groups.append((group_of or {}).get(key, ""))
            got = served.get(key, {})
            speed = got.get("mean_speed_kmh")
            if speed is None:
                self.no_speed += 1
                self.speed_err.append(math.nan)
                self.true_ff_levels.append((str(level), None))
            else:
                self.speed_err.append(abs(float(speed) - float(mean)))
                # Diagnostic only: the served speed against the truth's own free flow, to tell
                # the error of the pooled free flow from that of the window's speed.
                self.true_ff_levels.append((str(level), level_of(float(ff) / max(float(speed), 1.0))))
            self.levels.append((str(level), got.get("level")))
            self.moving.append(int(moving))

    def by_moving(self) -> dict[str, dict[str, Any]]:
        """Speed error and level agreement by the segments' true moving devices."""
        out: dict[str, dict[str, Any]] = {}
        for lo, hi in ((MIN_MOVING, 200), (200, 400), (400, 800), (800, 10**9)):
            pick = [i for i, m in enumerate(self.moving) if lo <= m < hi]
            errs = [self.speed_err[i] for i in pick if not math.isnan(self.speed_err[i])]
            out[f"{lo}-{hi if hi < 10**9 else ''}"] = {
                "scored": len(pick), "speed_mae_kmh": _mean(errs),
                "level_exact": _share([self.levels[i] for i in pick], 0),
                "level_exact_true_free_flow": _share([self.true_ff_levels[i] for i in pick], 0),
            }  # fmt: skip
        return out

    def by_group(self) -> dict[str, dict[str, Any]]:
        """Speed error (mean signed and absolute) and level agreement per group."""
        out: dict[str, dict[str, Any]] = {}
        for g in sorted(set(self.groups)):
            pick = [i for i, x in enumerate(self.groups) if x == g]
            errs = [self.speed_err[i] for i in pick if not math.isnan(self.speed_err[i])]
            out[g or "-"] = {"scored": len(pick), "speed_mae_kmh": _mean(errs),
                             "level_exact": _share([self.levels[i] for i in pick], 0),
                             "level_exact_true_free_flow": _share([self.true_ff_levels[i] for i in pick], 0),
                             "level_confusion": _confusion([self.levels[i] for i in pick])}  # fmt: skip
        return out

    def summary(self) -> dict[str, Any]:
        errs = [e for e in self.speed_err if not math.isnan(e)]
        return {
            "scored": len(self.levels),
            "without_speed": self.no_speed,
            "traffic_speed_mae_kmh": _mean(errs),
            "traffic_speed_err_p90_kmh": _quantile(errs, 0.9),
            "congestion_level_exact": _share(self.levels, 0),
            "congestion_level_within_one": _share(self.levels, 1),
            "congestion_level_exact_true_free_flow": _share(self.true_ff_levels, 0),
            "congestion_level_within_one_true_free_flow": _share(self.true_ff_levels, 1),
        }


@dataclass
class TrafficScore:
    """The traffic figures of a city run: corridors (the headline row: the unit the control room
    reads) and res-8 cells (the second row), each with its city index error per window."""

    corridors: SegmentScore = field(default_factory=SegmentScore)
    cells: SegmentScore = field(default_factory=SegmentScore)
    index_rel: dict[str, list[float]] = field(default_factory=lambda: {"corridors": [], "cells": []})

    def add_index(self, source: str, served: float, true: float) -> None:
        self.index_rel[source].append(abs(served - true) / true)

    def rows(self) -> dict[str, dict[str, Any]]:
        """One row of figures per segment kind; ``level_confusion`` included."""
        out = {}
        for name, seg in (("corridors", self.corridors), ("cells", self.cells)):
            rel = self.index_rel[name]
            out[name] = {**seg.summary(), "city_index_rel_err": _quantile(rel, 0.5),
                         "city_index_rel_err_max": round(max(rel), 4) if rel else None,
                         "city_index_points": len(rel),
                         "level_confusion": _confusion(seg.levels)}  # fmt: skip
        return out

    def summary(self) -> dict[str, Any]:
        """Flat figures: the corridors' under the issue's names (their counts ``corridors_…``),
        the cells' prefixed ``cells_``."""
        rows = self.rows()
        flat: dict[str, Any] = {}
        for k, v in rows["corridors"].items():
            flat[f"corridors_{k}" if k in ("scored", "without_speed") else k] = v
        flat |= {f"cells_{k}": v for k, v in rows["cells"].items()}
        for k in ("level_confusion", "cells_level_confusion"):
            flat.pop(k)
        return flat


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 3) if xs else None


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    ys = sorted(xs)
    return round(ys[min(len(ys) - 1, max(0, math.ceil(q * len(ys)) - 1))], 4)


def _share(pairs: list[tuple[str, str | None]], tol: int) -> float | None:
    if not pairs:
        return None
    ok = sum(s is not None and abs(LEVELS.index(t) - LEVELS.index(s)) <= tol for t, s in pairs)
    return round(ok / len(pairs), 4)


def _confusion(pairs: list[tuple[str, str | None]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for t, s in pairs:
        row = out.setdefault(t, {})
        row[s or "none"] = row.get(s or "none", 0) + 1
    return out


def true_index(truth: Iterable[list[Any]], keys: set[Any]) -> float | None:
    """Travel-time-weighted congestion index of the truth over the segments ``keys`` (res-8
    cells or corridor slugs; dimensionless)."""
    now = free = 0.0
    for _, key, moving, mean, ff, _ in truth:
        if key in keys and mean > 0 and ff > 0:
            now += moving / max(float(mean), 1.0)
            free += moving / float(ff)
    return now / free if free > 0 else None


def cells_of(served: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {h3.str_to_int(c["cell"]): c for c in served}


def corridors_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Corridors (zone set ``corridor``) the API serves in a /v1/traffic answer, by zone id (the
    simulator's slug)."""
    return {str(c["zone_id"]): c for c in doc.get("corridors") or [] if c["zone_set"] == "corridor"}


def heavy(level: str | None) -> bool:
    return level in ("heavy", "severe")


# --- alerts ---------------------------------------------------------------------------------


def rule_for(curve: list[float]) -> Rule:
    """Levels from a zone's own true curve, as a venue operator would set them for an expected
    crowd: warning at 40 % and critical at 80 % of the peak, each cleared 20 % below (the peak is
    25 % above critical, so the truth crosses both with more than the 10 % margin)."""
    peak = max(max(curve), 1.0)
    warn, crit = 0.4 * peak, 0.8 * peak
    return Rule((Level("warning", warn, 0.8 * warn), Level("critical", crit, 0.8 * crit)), min_windows=2,
                confidence=0.9)  # fmt: skip


Event = tuple[int, int, int]  # (window index, level before, level after)


def truth_events(rule: Rule, curve: list[float]) -> list[Event]:
    st, out = State(), []
    for k, v in enumerate(curve):
        st, change = step(rule, st, v, 0.0)
        if change is not None:
            out.append((k, change.before, change.after))
    return out


def margin_ok(rule: Rule, curve: list[float], ev: Event) -> bool:
    """Whether a true crossing is clear by ≥ 10 %: around it (± min_windows windows) the truth
    goes 10 % above the raised level's threshold, or 10 % below the left level's clear value."""
    k, before, after = ev
    span = curve[max(0, k - rule.min_windows) : k + rule.min_windows + 1]
    if after > before:
        return max(span) >= (1 + MARGIN) * rule.levels[after - 1].threshold
    return min(span) <= (1 - MARGIN) * rule.levels[before - 1].clear


@dataclass
class AlertScore:
    emitted: int = 0
    emitted_true: int = 0
    emitted_unscored: int = 0
    truth: int = 0
    truth_found: int = 0
    truth_unscored: int = 0
    by_zone: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, zone: str, rule: Rule, curve: list[float], emitted: list[Event]) -> None:
        tol = rule.min_windows
        t_all = truth_events(rule, curve)
        scored = [e for e in t_all if margin_ok(rule, curve, e)]
        unscored = [e for e in t_all if e not in scored]

        def near(a: Event, bs: list[Event]) -> bool:
            return any(a[1:] == b[1:] and abs(a[0] - b[0]) <= tol for b in bs)

        for e in emitted:
            if near(e, scored):
                self.emitted += 1
                self.emitted_true += 1
            elif near(e, unscored):
                self.emitted_unscored += 1
            else:
                self.emitted += 1
        self.truth += len(scored)
        self.truth_unscored += len(unscored)
        self.truth_found += sum(near(t, emitted) for t in scored)
        self.by_zone[zone] = {"truth": t_all, "emitted": emitted, "peak": max(curve),
                              "thresholds": [lv.threshold for lv in rule.levels]}  # fmt: skip

    def summary(self) -> dict[str, Any]:
        return {
            "alert_precision": round(self.emitted_true / self.emitted, 4) if self.emitted else None,
            "alert_recall": round(self.truth_found / self.truth, 4) if self.truth else None,
            "alert_events_emitted": self.emitted + self.emitted_unscored,
            "alert_truth_transitions": self.truth,
            "alert_truth_transitions_under_margin": self.truth_unscored,
        }
