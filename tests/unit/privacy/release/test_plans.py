"""A plan's identity: stable, round-trips through its stored JSON, changes with what changes numbers."""

from __future__ import annotations

import orjson
import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import build_hierarchy
from privacy.release.exceptions import ReleaseError
from privacy.release.plans import PlanRecord, area_digest, record_from_json


def _record(**overrides: object) -> PlanRecord:
    settings = load_settings(**overrides)
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    return PlanRecord(plan, 180, area_digest(tree))


def test_stored_plan_round_trips_exactly() -> None:
    record = _record()
    back = record_from_json(record.to_json())
    assert back == record
    assert back.hash == record.hash
    assert 0 <= record.hash < 2**64


def test_hash_changes_with_what_changes_the_numbers() -> None:
    base = _record()
    assert _record().hash == base.hash  # stable across processes and calls
    assert _record(budget_count_share=0.4).hash != base.hash
    assert _record(release_resolutions=(9, 8)).hash != base.hash
    assert PlanRecord(base.plan, 170, base.area).hash != base.hash
    assert PlanRecord(base.plan, 180, "0" * 32).hash != base.hash
    assert PlanRecord(base.plan, 180, base.area, rules="other").hash != base.hash


def test_unreadable_plan_is_refused_in_one_sentence() -> None:
    for text in ("{", '{"rules": 1}', "[]"):
        with pytest.raises(ReleaseError, match="cannot be read") as info:
            record_from_json(text)
        assert "\n" not in str(info.value)


def test_a_plan_stored_before_the_budget_plan_keeps_its_hash() -> None:
    """An intent written by the code before issue #11 (no shares, no zones, no zone draws) reads back
    to the very JSON it was stored as, so a window begun then is finished under its own plan."""
    record = _record(budget_plan=("cells:1",))
    doc = record.document()
    del doc["shares"]  # what the older code wrote: the same document without the plan's shares
    old = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
    back = record_from_json(old)
    assert back.to_json() == old
    assert "zones" not in doc and back.zones == ()
    assert back.charge == pytest.approx(back.plan.charge_per_window)  # cells only
