"""Probes and metrics: ``/healthz`` (process up), ``/readyz`` (store reachable, releases fresh),
``/metrics`` (Prometheus, admin keys)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AdminKey, StateDep
from api.exceptions import NotReadyError
from api.schemas.common import ERRORS
from hexpulse.errors import HexpulseError
from hexpulse.store import ping_clickhouse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: ClickHouse reachable and the latest release is fresh")
async def readyz(state: StateDep) -> dict[str, object]:
    try:
        await anyio.to_thread.run_sync(ping_clickhouse, state.settings)
        latest = await state.reader.latest(fresh=True)
    except HexpulseError:
        raise NotReadyError("ClickHouse is not reachable") from None
    if latest is None:
        raise NotReadyError("no window has been released yet")
    age = (datetime.now(UTC) - latest.end).total_seconds()
    if age > state.settings.api_fresh_release_s:
        raise NotReadyError(
            f"the latest release is {age:.0f} s old, above HEXPULSE_API_FRESH_RELEASE_S="
            f"{state.settings.api_fresh_release_s:g}"
        )
    return {"status": "ready", "latest_window_end": latest.end.isoformat(), "age_s": round(age, 1)}


# Documented refusals, so clients (and the schema fuzzer) know a 401/403/429 is part of the contract.
_METRICS_ERRORS: dict[int | str, dict[str, Any]] = {code: ERRORS[code] for code in (401, 403, 429)}


@router.get("/metrics", summary="Prometheus metrics (admin scope)", responses=_METRICS_ERRORS)
async def metrics(key: AdminKey) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
