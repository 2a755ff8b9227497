"""One plan per window, under any number of releasers: write an intent, then read them all back.

Before drawing window w a releaser settles on a *candidate* plan: its own if w has no intent
yet, the plan of w's intents if they all name one (a window is finished under the plan it was
begun with, e.g. across a configuration change), or, if intents name several plans, the one plan
whose cells are already stored for w. It then inserts an intent row ``(w, candidate, releaser)``
into ``release_intents`` and reads every intent of w again; it proceeds only if all of them name
the candidate (or the candidate's cells exist). Otherwise it refuses w and retries later.

Why two different plans never both proceed (one ClickHouse node): an INSERT is acknowledged
once its part is committed, and every later SELECT on the node sees it. Suppose releasers A (plan
P) and B (plan Q ≠ P) both proceeded. Each inserted, then read. If A's read did not see B's
intent, A read before B inserted, so B's read came after A's insert and saw P: B refused. So at
most one of them proceeded; a plan whose cells exist is the one that did (cells are written only
after a successful claim), which is why adopting it is safe. Releasers of the same plan draw the
same noise (:mod:`privacy.release.seeds`), so any number of them publish one value per
(window, resolution, cell, metric). On a replicated cluster the same argument needs the insert
to be acknowledged by a quorum and the read to see it: ``insert_quorum`` = replicas and
``select_sequential_consistency = 1`` for these statements (docs/ARCHITECTURE.md).

The one case that needs an operator: two releasers with *different* configurations that claim
the same window at the same instant and neither stores cells. The window is then refused with a
sentence naming both plans; stop the releaser with the unwanted configuration and delete its
intent rows of that window (PRIVACY.md §5).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from clickhouse_driver import Client

from hexpulse.logs import log_event
from privacy.release.exceptions import PlanConflictError
from privacy.release.plans import PlanRecord, record_from_json

log = logging.getLogger("hexpulse.privacy.claims")


def intent_plans(client: Client, db: str, window_start: datetime) -> dict[int, str]:
    """Plan hash → plan JSON of every intent of the window."""
    rows = client.execute(
        f"SELECT plan, any(plan_json) FROM {db}.release_intents WHERE window_start = %(w)s GROUP BY plan",
        {"w": window_start},
    )
    return {int(h): str(js) for h, js in rows}


def stored_cell_plans(client: Client, db: str, window_start: datetime) -> set[int]:
    rows = client.execute(
        f"SELECT DISTINCT plan FROM {db}.release_cells WHERE window_start = %(w)s", {"w": window_start}
    )
    return {int(r[0]) for r in rows}


def _finishable(record: PlanRecord, mine: PlanRecord, window_start: datetime) -> PlanRecord:
    if record.area != mine.area or record.rules != mine.rules:
        raise PlanConflictError(
            f"window {window_start:%Y-%m-%d %H:%M} was begun under plan {record.hash:016x} with another "
            "service area or code version; only a releaser with that configuration can finish it"
        )
    return record


def _candidate(client: Client, db: str, window_start: datetime, mine: PlanRecord) -> tuple[PlanRecord, bool]:
    """The plan to claim the window for, and whether its cells are already stored."""
    plans = intent_plans(client, db, window_start)
    if not plans:
        return mine, False
    if len(plans) == 1:
        ((_, text),) = plans.items()
        return _finishable(record_from_json(text), mine, window_start), False
    stored = stored_cell_plans(client, db, window_start) & set(plans)
    if len(stored) == 1:
        (winner,) = stored
        return _finishable(record_from_json(plans[winner]), mine, window_start), True
    raise PlanConflictError(
        f"window {window_start:%Y-%m-%d %H:%M} is claimed by plans "
        f"{', '.join(f'{h:016x}' for h in sorted(plans))}; stop the releaser whose configuration is "
        "unwanted and delete its release_intents rows of that window"
    )


def claim_window(
    client: Client, db: str, window_start: datetime, mine: PlanRecord, releaser: str
) -> PlanRecord:
    """The plan under which this releaser may draw the window, or PlanConflictError."""
    record, has_cells = _candidate(client, db, window_start, mine)
    client.execute(
        f"INSERT INTO {db}.release_intents (window_start, plan, releaser, plan_json, at) VALUES",
        [(window_start, record.hash, releaser, record.to_json(), _now())],
    )
    others = set(intent_plans(client, db, window_start)) - {record.hash}
    if others and not has_cells:
        raise PlanConflictError(
            f"window {window_start:%Y-%m-%d %H:%M} was claimed at the same time by plan "
            f"{min(others):016x} as well as {record.hash:016x}; refusing to draw it"
        )
    if record.hash != mine.hash:
        log_event(log, "finishing a window under the plan it was begun with", logging.WARNING,
                  window_start=window_start.isoformat(), plan=f"{record.hash:016x}",
                  own_plan=f"{mine.hash:016x}")  # fmt: skip
    return record


def _now() -> datetime:
    """Naive UTC, whole seconds: the form clickhouse-driver writes into DateTime('UTC')."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
