"""The alert state machine: levels in order, min_windows, hysteresis, noise-aware decisions."""

from __future__ import annotations

import pytest

from alerts.levels import Level, Rule, State, Transition, event_id, p_above, step

RULE = Rule((Level("warning", 100.0, 80.0), Level("critical", 200.0, 160.0)), min_windows=2)


def run(rule: Rule, values: list[float], sigma: float = 0.0) -> list[tuple[int, str]]:
    state, out = State(), []
    for i, v in enumerate(values):
        state, change = step(rule, state, v, sigma)
        if change:
            out.append((i, change.kind + ":" + str(change.after)))
    return out


def test_levels_rise_and_clear_in_order_after_min_windows() -> None:
    values = [50, 120, 130, 250, 260, 260, 150, 150, 70, 60, 60]
    assert run(RULE, values) == [(2, "raised:1"), (4, "raised:2"), (7, "lowered:1"), (9, "cleared:0")]


def test_hysteresis_keeps_the_level_between_clear_and_threshold() -> None:
    assert run(RULE, [120, 120, 90, 90, 90, 85]) == [(1, "raised:1")]


def test_a_single_spike_does_not_fire() -> None:
    assert run(RULE, [50, 300, 50, 300, 50]) == []


def test_a_streak_reaches_only_the_level_every_window_supports() -> None:
    assert run(RULE, [250, 120]) == [(1, "raised:1")]


def test_min_windows_one_fires_at_once() -> None:
    assert run(Rule(RULE.levels, min_windows=1), [250, 0]) == [(0, "raised:2"), (1, "cleared:0")]


def test_confidence_needs_the_estimate_clear_of_the_threshold() -> None:
    strict = Rule(RULE.levels, min_windows=1, confidence=0.95)
    assert run(strict, [110], sigma=10.0) == []  # P ≈ 0.84
    assert run(strict, [120], sigma=10.0) == [(0, "raised:1")]  # P ≈ 0.977


def test_p_above_is_the_gaussian_tail() -> None:
    assert p_above(100, 10, 100) == pytest.approx(0.5)
    assert p_above(119.6, 10, 100) == pytest.approx(0.975, abs=1e-3)
    assert p_above(5, 0, 4) == 1.0 and p_above(4, 0, 4) == 0.0


@pytest.mark.parametrize(
    ("levels", "msg"),
    [
        ((Level("a", 2, 1), Level("b", 2, 1)), "ascending"),
        ((Level("a", 2, 3),), "clear"),
        ((), "1 to 8"),
        ((Level("a", 2, 1), Level("a", 3, 1)), "distinct"),
    ],
)
def test_bad_rules_are_refused(levels: tuple[Level, ...], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        Rule(levels).check()


def test_event_ids_are_deterministic_per_subscription_window_and_transition() -> None:
    a = event_id("sub_1", 600, Transition(0, 1))
    assert a == event_id("sub_1", 600, Transition(0, 1)) and a.startswith("evt_")
    assert len({a, event_id("sub_1", 660, Transition(0, 1)), event_id("sub_2", 600, Transition(0, 1)),
                event_id("sub_1", 600, Transition(1, 2))}) == 4  # fmt: skip
