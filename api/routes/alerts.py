"""``/v1/alerts``: crowd-safety subscriptions (scope ``alerts:write``; a key sees and changes only
its own, another's id is 404), their events (history and a resumable SSE stream) and deliveries.
Evaluation and delivery run in ``hexpulse alerts`` (docs/ALERTS.md), never in the API process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from sse_starlette import EventSourceResponse

from alerts import events as alert_events
from alerts.levels import BELOW_METRICS, DEFAULT_DENSITY_LEVELS, DEFAULT_SPEED_LEVELS, Level, Rule
from alerts.subscriptions import Subscription, SubscriptionStore, check
from api.alert_marks import EventMarks
from api.auth import require
from api.deps import SettingsDep, StateDep, check_range, parse_time, zone_store
from api.exceptions import BadRequestError, NotFoundError
from api.keys import ApiKey
from api.schemas.alerts import DeliveryList, EventList, SubscriptionIn, SubscriptionList, SubscriptionOut
from api.schemas.common import ERRORS

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
AlertsKey = Annotated[ApiKey, Depends(require("alerts:write"))]
SubId = Annotated[str, Path(max_length=64, description="subscription id")]


def _unit(s: Subscription) -> str:
    if s.metric == "traffic_speed":
        return "km/h (mean speed of moving devices)"
    per = "devices" if s.expansion == 1.0 else "persons (devices × expansion)"
    return f"{per} per m²" if s.metric == "crowd_density" else per


def _out(s: Subscription, secret: str | None = None) -> SubscriptionOut:
    return SubscriptionOut.model_validate({
        "id": s.subscription_id, "name": s.name, "zone_id": s.zone_id, "metric": s.metric, "unit": _unit(s),
        "expansion": s.expansion, "min_windows": s.rule.min_windows, "confidence": s.rule.confidence,
        "levels": [{"name": lv.name, "threshold": lv.threshold, "clear": lv.clear} for lv in s.rule.levels],
        "webhook_url": s.webhook_url or None, "secret": secret, "created_at": alert_events.iso(s.created_at),
    })  # fmt: skip


def _rule(body: SubscriptionIn) -> Rule:
    below = body.metric in BELOW_METRICS
    if body.levels is None:
        if body.metric == "crowd_count":
            raise BadRequestError("crowd_count needs its levels (persons); crowd_density and traffic_speed "
                                  "have defaults")  # fmt: skip
        defaults = DEFAULT_SPEED_LEVELS if below else DEFAULT_DENSITY_LEVELS
        pairs: list[tuple[str, float, float | None]] = [(n, t, None) for n, t in defaults]
    else:
        pairs = [(lv.name, lv.threshold, lv.clear) for lv in body.levels]
    hyst = 1 + body.hysteresis if below else 1 - body.hysteresis  # clear on the far side of the threshold
    levels = tuple(Level(n, t, t * hyst if c is None else c) for n, t, c in pairs)
    try:
        return Rule(levels, body.min_windows, body.confidence, below=below).check()
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None


ALERT_ZONE_NAME = "alert zone"
"""The name of a zone a subscription's polygon registers (public: it tells nobody whose it is)."""


def _create(request: Request, key: ApiKey, body: SubscriptionIn, zone_set: str) -> SubscriptionOut:
    zones = zone_store(request)
    if (body.zone_id is None) == (body.geometry is None):
        raise BadRequestError("give exactly one of zone_id (a registered zone) or geometry (a GeoJSON "
                              "polygon)")  # fmt: skip
    rule = _rule(body)
    url, secrets = (body.webhook.url, tuple(body.webhook.secrets)) if body.webhook else ("", ())
    try:  # before a polygon registers its zone: a refused subscription leaves nothing behind
        check(body.name, body.metric, body.expansion, rule, url, secrets)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    if body.zone_id is not None:
        zone_id = zones.history(body.zone_id)[-1].zone_id  # 404 for an unknown zone
    else:
        # Zones are public; the subscription's name is its owner's, so the zone gets a neutral one.
        zone_id = zones.create(zone_set, ALERT_ZONE_NAME, body.geometry).zone_id  # validates size, vertices
    store = SubscriptionStore(request.app.state.api.pool)
    try:
        sub = store.create(key.key_id, body.name, zone_id, body.metric, body.expansion, rule, url, secrets)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    return _out(sub, sub.secrets[0] if url and not secrets else None)


@router.post("/subscriptions", status_code=201, summary="Subscribe to a zone's crowd levels",
             responses=ERRORS)  # fmt: skip
async def create_subscription(
    request: Request, key: AlertsKey, settings: SettingsDep, body: Annotated[SubscriptionIn, Body()]
) -> SubscriptionOut:
    return await anyio.to_thread.run_sync(lambda: _create(request, key, body, settings.alerts_zone_set))


@router.get("/subscriptions", summary="This key's subscriptions", responses=ERRORS)
async def list_subscriptions(key: AlertsKey, state: StateDep) -> SubscriptionList:
    subs = await anyio.to_thread.run_sync(SubscriptionStore(state.pool).active, key.key_id)
    return SubscriptionList(subscriptions=[_out(s) for s in subs])


async def _own(state: Any, key: ApiKey, sub_id: str) -> Subscription:
    sub = await anyio.to_thread.run_sync(SubscriptionStore(state.pool).get, key.key_id, sub_id)
    if sub is None:
        raise NotFoundError(f"no subscription {sub_id!r} of this key")
    return sub


@router.get("/subscriptions/{sub_id}", summary="One of this key's subscriptions", responses=ERRORS)
async def get_subscription(key: AlertsKey, state: StateDep, sub_id: SubId) -> SubscriptionOut:
    return _out(await _own(state, key, sub_id))


@router.delete("/subscriptions/{sub_id}", status_code=204, summary="End a subscription", responses=ERRORS)
async def delete_subscription(key: AlertsKey, state: StateDep, sub_id: SubId) -> None:
    await _own(state, key, sub_id)
    await anyio.to_thread.run_sync(SubscriptionStore(state.pool).delete, key.key_id, sub_id)


@router.get("/events", summary="This key's alert events, newest first", responses=ERRORS)
async def list_events(
    key: AlertsKey, state: StateDep, settings: SettingsDep,
    subscription: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern="^(raised|lowered|cleared)$")] = None,
    start: Annotated[str | None, Query(alias="from", max_length=64, description="ISO 8601; to−24h")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description="ISO 8601; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:  # fmt: skip
    t1 = parse_time(end, "to") if end else datetime.now(UTC) + timedelta(minutes=1)
    t0 = parse_time(start, "from") if start else t1 - timedelta(hours=24)
    check_range(t0, t1, settings)
    docs = await anyio.to_thread.run_sync(lambda: alert_events.history(
        state.pool, key.key_id, subscription=subscription, kind=kind, start=t0, end=t1, limit=limit
    ))  # fmt: skip
    return EventList.model_validate({"events": docs})


@router.get("/deliveries", summary="Webhook deliveries not delivered: pending retries and dead letters",
            responses=ERRORS)  # fmt: skip
async def list_deliveries(
    key: AlertsKey, state: StateDep,
    status: Annotated[str | None, Query(pattern="^(pending|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:  # fmt: skip
    docs = await anyio.to_thread.run_sync(
        lambda: alert_events.deliveries(state.pool, key.key_id, status, limit)
    )
    return DeliveryList.model_validate({"deliveries": docs})


def _marks(request: Request, state: Any, settings: Any) -> EventMarks:
    """The process's one :class:`EventMarks`, made on first use (app state, shared by every stream)."""
    marks: EventMarks | None = getattr(request.app.state, "alert_marks", None)
    if marks is None:
        marks = request.app.state.alert_marks = EventMarks(state.pool, settings.alerts_poll_s)
    return marks


@router.get("/stream", summary="This key's alert events as they happen (SSE; resumable with Last-Event-ID)",
            responses=ERRORS)  # fmt: skip
async def stream(
    request: Request, key: AlertsKey, state: StateDep, settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> EventSourceResponse:  # fmt: skip
    # A fresh stream starts with the last hour, from a whole minute so streams opened together share
    # their first read (api/alert_marks.py).
    since = (int(datetime.now(UTC).timestamp()) - 3600) // 60 * 60
    marks = _marks(request, state, settings)

    async def events() -> AsyncIterator[dict[str, str]]:
        last, seen = last_event_id, None
        while not await request.is_disconnected():
            # Read the mark first: an event written after it changes the next mark, so none is missed.
            mark = await marks.mark(key.key_id)
            if mark != seen:
                docs = await marks.events_after(key.key_id, last, since, mark)
                for doc in docs:
                    last = doc["id"]
                    yield {"event": "alert", "id": doc["id"], "data": orjson.dumps(doc).decode()}
                if len(docs) < alert_events.AFTER_LIMIT:  # a full page: read on at the next poll
                    seen = mark
            await asyncio.sleep(settings.alerts_poll_s)

    return EventSourceResponse(events(), ping=15, send_timeout=30)
