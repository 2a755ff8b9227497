"""Subscriptions: what one subscriber watches and where its events go (``alert_subscriptions``).

Validated before they are stored (:func:`check`); a subscriber sees and changes only its own (every
read takes the owner). Blocking: call from a thread in the API.
"""

from __future__ import annotations

import secrets as _secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from alerts.levels import BELOW_METRICS, METRICS, Level, Rule
from alerts.signing import SignatureError, new_secret, secret_key
from alerts.ssrf import RefusedTarget, check_url
from hexpulse.store.pool import ClickHousePool

COLUMNS = ("subscription_id, owner, name, zone_id, metric, expansion, levels, min_windows, confidence, "
           "webhook_url, secrets, deleted, created_at, revision")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Subscription:
    """``expansion``: persons per device for the crowd metrics (1 = devices, labeled as such; 1
    for ``traffic_speed``, a mean speed of moving devices);
    ``webhook_url`` empty = stream only; ``secrets`` newest first (several while rotating)."""

    subscription_id: str
    owner: str
    name: str
    zone_id: str
    metric: str
    expansion: float
    rule: Rule
    webhook_url: str
    secrets: tuple[str, ...]
    created_at: datetime

    def row(self, deleted: bool = False) -> tuple[Any, ...]:
        levels = orjson.dumps([{"name": lv.name, "threshold": lv.threshold, "clear": lv.clear}
                               for lv in self.rule.levels]).decode()  # fmt: skip
        return (self.subscription_id, self.owner, self.name, self.zone_id, self.metric, self.expansion,
                levels, self.rule.min_windows, self.rule.confidence, self.webhook_url, list(self.secrets),
                int(deleted), self.created_at.replace(tzinfo=None), time.time_ns())  # fmt: skip

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Subscription:
        levels = tuple(Level(d["name"], float(d["threshold"]), float(d["clear"])) for d in orjson.loads(r[6]))
        rule = Rule(levels, int(r[7]), float(r[8]), below=r[4] in BELOW_METRICS)
        return cls(r[0], r[1], r[2], r[3], r[4], float(r[5]), rule, r[9], tuple(r[10]),
                   r[12].replace(tzinfo=UTC))  # fmt: skip


def check(name: str, metric: str, expansion: float, rule: Rule, webhook_url: str,
          secrets: tuple[str, ...]) -> None:  # fmt: skip
    """ValueError saying what is wrong with a subscription's fields (the zone is checked apart)."""
    if not name.strip() or len(name) > 200:
        raise ValueError("a subscription needs a name of 1 to 200 characters")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    if not 0.1 <= expansion <= 100:
        raise ValueError("expansion (persons per device) must be 0.1 to 100")
    if metric in BELOW_METRICS and expansion != 1.0:
        raise ValueError(f"expansion applies to the crowd metrics only, not to {metric}")
    if rule.below != (metric in BELOW_METRICS):
        side = "below" if metric in BELOW_METRICS else "above"
        raise ValueError(f"{metric} levels fire {side} their thresholds")
    rule.check()
    if webhook_url:
        try:
            check_url(webhook_url)
        except RefusedTarget as exc:
            raise ValueError(str(exc)) from exc
    for s in secrets:
        try:
            secret_key(s)
        except SignatureError as exc:
            raise ValueError(str(exc)) from exc
    if len(secrets) > 3:
        raise ValueError("at most 3 webhook secrets (the current one and those being rotated out)")


class SubscriptionStore:
    def __init__(self, pool: ClickHousePool) -> None:
        self._pool = pool

    def create(self, owner: str, name: str, zone_id: str, metric: str, expansion: float, rule: Rule,
               webhook_url: str, secrets: tuple[str, ...] = ()) -> Subscription:  # fmt: skip
        """A new subscription; a webhook without a secret gets a fresh one (returned once)."""
        if webhook_url and not secrets:
            secrets = (new_secret(),)
        check(name, metric, expansion, rule, webhook_url, secrets)
        sub = Subscription(f"sub_{_secrets.token_hex(8)}", owner, name.strip(), zone_id, metric, expansion,
                           rule, webhook_url, secrets, datetime.now(UTC).replace(microsecond=0))  # fmt: skip
        self._pool.insert(f"INSERT INTO alert_subscriptions ({COLUMNS}) VALUES", [sub.row()])
        return sub

    def active(self, owner: str | None = None) -> list[Subscription]:
        """Live subscriptions (of ``owner``, or everyone's for the evaluator), oldest first."""
        where = "deleted = 0" + (" AND owner = %(o)s" if owner is not None else "")
        rows = self._pool.query(
            f"SELECT {COLUMNS} FROM alert_subscriptions FINAL WHERE {where}"
            " ORDER BY created_at, subscription_id",
            {"o": owner or ""},
        )
        return [Subscription.from_row(r) for r in rows]

    def get(self, owner: str, subscription_id: str) -> Subscription | None:
        """The owner's live subscription, or None (another owner's id is as good as missing)."""
        rows = self._pool.query(
            f"SELECT {COLUMNS} FROM alert_subscriptions FINAL WHERE subscription_id = %(i)s "
            "AND owner = %(o)s AND deleted = 0",
            {"i": subscription_id, "o": owner},
        )
        return Subscription.from_row(rows[0]) if rows else None

    def delete(self, owner: str, subscription_id: str) -> bool:
        sub = self.get(owner, subscription_id)
        if sub is None:
            return False
        self._pool.insert(f"INSERT INTO alert_subscriptions ({COLUMNS}) VALUES", [sub.row(deleted=True)])
        return True
