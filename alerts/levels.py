"""What a subscription watches and the state machine that turns released values into events.

Pure: no store, no clock. A subscription's state after a window depends only on its state before
and on that window's released value, so re-evaluating a window (a restart) yields the same state
and the same events (ids from subscription, window and transition: :func:`event_id`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Literal

Metric = Literal["crowd_count", "crowd_density", "traffic_speed"]
METRICS: tuple[str, ...] = ("crowd_count", "crowd_density", "traffic_speed")
BELOW_METRICS: tuple[str, ...] = ("traffic_speed",)
"""Metrics whose levels fire when the value is *below* the thresholds (a slower zone is worse)."""

#: Defaults for ``crowd_density`` (persons/m²), docs/ALERTS.md "Thresholds" cites the sources.
DEFAULT_DENSITY_LEVELS: tuple[tuple[str, float], ...] = (("caution", 2.0), ("alert", 3.5), ("serious", 5.0))
#: Defaults for ``traffic_speed`` (km/h, descending): slow below 30, jam below 15.
DEFAULT_SPEED_LEVELS: tuple[tuple[str, float], ...] = (("slow", 30.0), ("jam", 15.0))


@dataclass(frozen=True, slots=True)
class Level:
    """One level: raised when the value is above ``threshold``, left when below ``clear``
    (``clear`` < ``threshold``: the hysteresis); for a below-metric the other way round (raised
    below ``threshold``, left above ``clear`` > ``threshold``). Units are the metric's (persons,
    persons/m², km/h)."""

    name: str
    threshold: float
    clear: float


@dataclass(frozen=True, slots=True)
class Rule:
    """The decision part of a subscription. ``confidence``: the probability that the true value is
    above a threshold needed to count a window as above it; ``min_windows``: consecutive windows on
    one side before the level changes (raising and lowering alike); ``below``: the levels fire
    below their thresholds (``traffic_speed``), where "above" reads "below" throughout."""

    levels: tuple[Level, ...]
    min_windows: int = 2
    confidence: float = 0.5
    below: bool = False

    def beyond(self, estimate: float, sigma: float, threshold: float) -> float:
        """P(true value is past ``threshold`` on the firing side): above, or below for a below-rule."""
        p = p_above(estimate, sigma, threshold)
        return 1.0 - p if self.below else p

    def check(self) -> Rule:
        """The rule itself, or ValueError saying what is wrong (thresholds ascending, clear below;
        for a below-rule thresholds descending, clear above)."""
        if not 1 <= len(self.levels) <= 8:
            raise ValueError("a subscription needs 1 to 8 levels")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names) or any(not n or len(n) > 32 for n in names):
            raise ValueError("level names must be distinct, 1 to 32 characters")
        sign = -1.0 if self.below else 1.0  # a below-rule is an above-rule of the negated value
        last = -math.inf
        for lv in self.levels:
            if not (math.isfinite(lv.threshold) and lv.threshold > 0):
                raise ValueError(f"level {lv.name!r}: the threshold must be a positive number")
            if sign * lv.threshold <= last:
                order = "descending (each level slower)" if self.below else "ascending"
                raise ValueError(f"level thresholds must be strictly {order}")
            if self.below and not (math.isfinite(lv.clear) and lv.clear > lv.threshold):
                raise ValueError(f"level {lv.name!r}: clear must be above the threshold (a below-metric)")
            if not self.below and not 0 <= lv.clear < lv.threshold:
                raise ValueError(f"level {lv.name!r}: clear must be ≥ 0 and below the threshold")
            last = sign * lv.threshold
        if not 1 <= self.min_windows <= 60:
            raise ValueError("min_windows must be 1 to 60")
        if not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must be in [0.5, 1)")
        return self


@dataclass(frozen=True, slots=True)
class State:
    """``level``: 0 normal, k the k-th level (1-based). ``streak`` consecutive windows pointing
    the same way (``direction`` +1 up, −1 down, 0 none) and ``target`` the level they all reach."""

    level: int = 0
    direction: int = 0
    streak: int = 0
    target: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """A level change decided at a window: from ``before`` to ``after`` (0 = normal)."""

    before: int
    after: int

    @property
    def kind(self) -> str:
        return "cleared" if self.after == 0 else ("raised" if self.after > self.before else "lowered")


def p_above(estimate: float, sigma: float, threshold: float) -> float:
    """P(true > threshold) under the Gaussian approximation N(estimate, sigma²) of the release."""
    if sigma <= 0:
        return 1.0 if estimate > threshold else 0.0
    return 0.5 * math.erfc((threshold - estimate) / (sigma * math.sqrt(2.0)))


def observed_level(rule: Rule, current: int, estimate: float, sigma: float) -> int:
    """The level this one window supports: the highest level whose threshold it is confidently
    above, or, at or below the current level, the highest one whose clear value it is confidently
    above (so a value between clear and threshold keeps the level); "below" for a below-rule."""
    up = 0
    for k, lv in enumerate(rule.levels, start=1):
        if rule.beyond(estimate, sigma, lv.threshold) >= rule.confidence:
            up = k
    hold = 0
    for k, lv in enumerate(rule.levels[:current], start=1):
        if rule.beyond(estimate, sigma, lv.clear) >= rule.confidence:
            hold = k
    return max(up, hold)


def step(rule: Rule, state: State, estimate: float, sigma: float) -> tuple[State, Transition | None]:
    """The state after one released window and the transition it makes, if any."""
    seen = observed_level(rule, state.level, estimate, sigma)
    if seen == state.level:
        return State(state.level), None
    direction = 1 if seen > state.level else -1
    if direction == state.direction:
        # The level a streak reaches is the one every window of it supports.
        target = min(state.target, seen) if direction > 0 else max(state.target, seen)
        nxt = replace(state, streak=state.streak + 1, target=target)
    else:
        nxt = State(state.level, direction, 1, seen)
    if nxt.streak >= rule.min_windows:
        return State(nxt.target), Transition(state.level, nxt.target)
    return nxt, None


def event_id(subscription_id: str, window_start_s: int, transition: Transition) -> str:
    """Deterministic event id (``evt_`` + 24 hex): the same window re-evaluated names the same event."""
    text = f"{subscription_id}|{window_start_s}|{transition.before}|{transition.after}"
    return "evt_" + hashlib.sha256(text.encode()).hexdigest()[:24]
