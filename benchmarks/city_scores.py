"""Scores of benchmarks/bench_city.py: what the API serves and the alert evaluator decides,
against the simulator's ground truth.

Traffic (issue #12), on res-8 cells and corridors with ≥ 100 truly moving devices:
``traffic_speed_mae_kmh`` |served mean speed − true mean speed|; ``congestion_level_exact`` /
``_within_one`` served level vs the truth's (a level the API leaves out counts as wrong);
``incident_detect_windows`` windows from the one holding the incident's start to the first whose
corridor (or, while corridors are not served, one of the res-8 cells its cover touches) reads
heavy or worse; ``city_index_rel_err`` |served city index − true index| / true index per window,
the true index travel-time weighted over the same cells, Σ n/v ÷ Σ n/v_free with each cell's
true moving devices n, mean speed v and free flow v_free.

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
class TrafficScore:
    """Running sums of the traffic figures over the scored windows."""

    speed_err: list[float] = field(default_factory=list)
    levels: list[tuple[str, str | None]] = field(default_factory=list)  # (truth, served)
    moving: list[int] = field(default_factory=list)  # true moving devices of each scored cell
    true_ff_levels: list[tuple[str, str | None]] = field(default_factory=list)  # diagnostic, below
    no_speed: int = 0
    corridor_err: list[float] = field(default_factory=list)
    corridor_levels: list[tuple[str, str | None]] = field(default_factory=list)
    index_rel: list[float] = field(default_factory=list)
    index_pairs: list[tuple[str, float, float]] = field(default_factory=list)

    def add_cells(self, truth: Iterable[list[Any]], served: dict[int, dict[str, Any]]) -> None:
        for _, cell, moving, mean, ff, level in truth:
            if moving < MIN_MOVING:
                continue
            got = served.get(int(cell), {})
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

    def add_corridors(self, truth: Iterable[list[Any]], served: dict[str, dict[str, Any]]) -> None:
        for _, slug, moving, mean, _, level in truth:
            if moving < MIN_MOVING or slug not in served:
                continue
            speed = served[slug].get("mean_speed_kmh")
            if speed is not None:
                self.corridor_err.append(abs(float(speed) - float(mean)))
            self.corridor_levels.append((str(level), served[slug].get("level")))

    def by_moving(self) -> dict[str, dict[str, Any]]:
        """Speed error and level agreement by the cells' true moving devices."""
        out: dict[str, dict[str, Any]] = {}
        for lo, hi in ((MIN_MOVING, 200), (200, 400), (400, 800), (800, 10**9)):
            pick = [i for i, m in enumerate(self.moving) if lo <= m < hi]
            errs = [self.speed_err[i] for i in pick if not math.isnan(self.speed_err[i])]
            out[f"{lo}-{hi if hi < 10**9 else ''}"] = {
                "cells": len(pick), "speed_mae_kmh": _mean(errs),
                "level_exact": _share([self.levels[i] for i in pick], 0),
                "level_exact_true_free_flow": _share([self.true_ff_levels[i] for i in pick], 0),
            }  # fmt: skip
        return out

    def summary(self) -> dict[str, Any]:
        errs = [e for e in self.speed_err if not math.isnan(e)]
        out: dict[str, Any] = {
            "traffic_cells_scored": len(self.levels),
            "traffic_cells_without_speed": self.no_speed,
            "traffic_speed_mae_kmh": _mean(errs),
            "traffic_speed_err_p90_kmh": _quantile(errs, 0.9),
            "congestion_level_exact": _share(self.levels, 0),
            "congestion_level_within_one": _share(self.levels, 1),
            "level_confusion": _confusion(self.levels),
            "congestion_level_exact_true_free_flow": _share(self.true_ff_levels, 0),
            "congestion_level_within_one_true_free_flow": _share(self.true_ff_levels, 1),
            "city_index_rel_err": _quantile(self.index_rel, 0.5),
            "city_index_rel_err_max": round(max(self.index_rel), 4) if self.index_rel else None,
        }
        if self.corridor_levels:
            out |= {"corridors_scored": len(self.corridor_levels),
                    "corridor_speed_mae_kmh": _mean(self.corridor_err),
                    "corridor_level_exact": _share(self.corridor_levels, 0),
                    "corridor_level_within_one": _share(self.corridor_levels, 1)}  # fmt: skip
        return out


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


def true_index(truth: Iterable[list[Any]], cells: set[int]) -> float | None:
    """Travel-time-weighted congestion index of the truth over ``cells`` (dimensionless)."""
    now = free = 0.0
    for _, cell, moving, mean, ff, _ in truth:
        if int(cell) in cells and mean > 0 and ff > 0:
            now += moving / max(float(mean), 1.0)
            free += moving / float(ff)
    return now / free if free > 0 else None


def cells_of(served: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {h3.str_to_int(c["cell"]): c for c in served}


def corridors_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Corridors the API serves in a /v1/traffic answer, by slug (none yet on main)."""
    out: dict[str, dict[str, Any]] = {}
    for c in doc.get("corridors") or []:
        slug = next((c[k] for k in ("zone_id", "corridor", "slug", "id") if k in c), None)
        if slug is not None:
            out[str(slug)] = c
    return out


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
