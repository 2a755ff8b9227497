"""``hexpulse release``: publish every complete window with differential-privacy noise."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Annotated

import typer

from hexpulse.logs import log_event
from hexpulse.settings import get_settings
from hexpulse.store import ping_clickhouse

log = logging.getLogger("hexpulse.privacy.cli")


def release(
    once: Annotated[bool, typer.Option("--once", help="Release every complete window, then exit.")] = False,
    poll_s: Annotated[
        float | None,
        typer.Option("--poll-s", help="Seconds between polls (default HEXPULSE_RELEASE_POLL_S)."),
    ] = None,
) -> None:
    """Release complete windows (noise once per window) into the public release tables."""
    from hexpulse.errors import StoreError
    from privacy.release.exceptions import ReleaseError
    from privacy.release.releaser import Releaser
    from privacy.release.retention import RetentionSchedule
    from privacy.release.tourism_release import TourismReleaser

    settings = get_settings()
    ping_clickhouse(settings)
    releaser = Releaser(settings)  # refuses a configuration the budget cannot cover
    releaser.check_budget_today()
    plan = releaser.plan
    log_event(
        log,
        "releaser started",
        mechanism=plan.mechanism,
        rho_per_device_day=plan.rho_per_device_day,
        eps_per_device_day=round(plan.eps_per_device_day, 4),
        delta=plan.delta,
        draws=[(d.metric, d.res, round(d.params.sigma, 3)) for d in plan.every_draw],
        daily_draws=[(d.metric, round(d.params.sigma, 3)) for d in plan.daily_draws],
        budget_plan=dict(plan.shares),
    )
    retention = RetentionSchedule(settings)
    # Tourism days are released by the same process, after the windows they wait for.
    tourism = TourismReleaser(settings, releaser.client, releaser.ring, plan)
    if once:
        n = releaser.run_once()
        days = tourism.run_once() if tourism.funded else 0
        retention.maybe_run(releaser.client)
        typer.echo(f"released {n} window(s), {days} tourism day(s)")
        return

    stop = False

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval = poll_s if poll_s is not None else settings.release_poll_s
    next_tourism = 0.0
    while not stop:
        try:
            releaser.run_once()
            if tourism.funded and time.monotonic() >= next_tourism:
                tourism.run_once()  # a few cheap reads when nothing is due; days end once a day
                next_tourism = time.monotonic() + 30.0
            retention.maybe_run(releaser.client)
        except (ReleaseError, StoreError) as exc:
            # ClickHouse hiccups are retried on the next poll: nothing was published for a window
            # that failed half-way, and the next attempt resumes it (never redraws a public one).
            log_event(log, "release attempt failed; retrying", logging.WARNING, error=str(exc))
        deadline = time.monotonic() + interval
        while not stop and time.monotonic() < deadline:
            time.sleep(min(0.1, interval))
    log_event(log, "releaser stopped")
