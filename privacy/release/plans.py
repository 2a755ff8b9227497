"""A release plan's identity and stored form, so every window is finished under the plan it began with.

A :class:`PlanRecord` is everything that decides a window's published numbers apart from the
exact data and the noise key: the noise of every draw family (cells, zone sets, speed bins per
cell and per zone set), the cells of
every released resolution (a digest of the service area's hierarchy), the speed cap of the mean
speed, the speed bins' edges and whether the window draws them, the registered zones the
window measures (set, id, version and a digest of their cells;
they differ from window to window, so the record is built per window), and the version of the
sampler and of the row rules. Its ``hash`` (64 bits of SHA-256 over the canonical
JSON) goes on every ``release_intents``, ``release_cells``, ``release_windows`` and
``release_ledger`` row; its JSON goes on the intent, so a releaser with another configuration
can finish a window begun under this one (:mod:`privacy.release.claims`) and charge what that
plan costs, not what its own would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from hexpulse.zones import ZoneRef
from privacy.release.budget import Draw, ReleasePlan
from privacy.release.consistency import Hierarchy
from privacy.release.exceptions import ReleaseError
from privacy.release.mechanisms import NoiseParams
from privacy.release.shares import SET_PREFIXES, TRAFFIC, TRAFFIC_PREFIX, ZONES_PREFIX

#: Bumped whenever the sampler's use of the keystream or the rules turning estimates into rows
#: change: the same plan must give the same numbers, so a new rule is a new plan.
#: rows-v2 (issue #11) adds count_est/moving_est. The existing columns' numbers are unchanged, yet
#: it is a new plan: a rows-v1 releaser (during a rolling upgrade) writes rows whose estimates
#: default to the clipped count, so under one hash the two versions would write different rows for
#: the same key; as two plans, the intents let only one of them draw a window.
RULES_VERSION = "cks2020-chacha20-v1/rows-v2"


def area_digest(tree: Hierarchy) -> str:
    """Hex digest of the released cells at every resolution (their order is the vectors' order)."""
    h = hashlib.sha256()
    for res, cells in zip(tree.resolutions, tree.cells, strict=True):
        h.update(b"res=%d:" % res)
        h.update(np.ascontiguousarray(cells, dtype="<u8").tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class PlanRecord:
    """A plan with what else fixes its numbers; ``hash`` is its identity (UInt64 in ClickHouse)."""

    plan: ReleasePlan
    speed_cap_kmh: int
    area: str
    rules: str = RULES_VERSION
    zones: tuple[ZoneRef, ...] = ()  # sorted by (set, id)
    #: False when the plan funds speed bins (``traffic`` or a ``traffic.<set>``) but the window's
    #: partials predate them (migration 0011): the window then draws no bins and is not charged.
    traffic_drawn: bool = True

    @property
    def zone_sets(self) -> tuple[str, ...]:
        """The zone sets this window draws (those with at least one zone), sorted."""
        return tuple(sorted({z.zone_set for z in self.zones}))

    @property
    def charge(self) -> float:
        """What this window charges each device-day: the cells and the zone sets it draws."""
        return self.plan.window_charge(self.zone_sets, self.traffic_drawn)

    @property
    def draws_traffic(self) -> bool:
        """Whether this window releases speed bins per cell."""
        return self.plan.traffic_draw is not None and self.traffic_drawn

    @property
    def draws_bins(self) -> bool:
        """Whether this window reads the partials' speed bins (per cell or per zone)."""
        return self.plan.funds_bins and self.traffic_drawn

    def document(self) -> dict[str, Any]:
        """The canonical form. ``shares`` and ``zones`` appear only when non-empty, so a plan stored
        before the budget plan existed reads back with its own hash (and is finished under it)."""
        p = self.plan
        doc: dict[str, Any] = {
            "rules": self.rules,
            "area": self.area,
            "speed_cap_kmh": self.speed_cap_kmh,
            "mechanism": p.mechanism,
            "rho_per_day": p.rho_per_day,
            "delta": p.delta,
            "window_s": p.window_s,
            "windows_per_day": p.windows_per_day,
            "windows_per_device_day": p.windows_per_device_day,
            "base_resolution": p.base_resolution,
            "resolutions": list(p.resolutions),
            "metrics": list(p.metrics),
            "draws": [
                {"metric": d.metric, "res": d.res, "mechanism": d.params.mechanism, "bound": d.params.bound,
                 "entries": d.params.entries, "scale": d.params.scale, "rho": d.rho, "charge": d.charge}
                for d in p.every_draw
            ],  # fmt: skip
        }
        if p.shares:
            doc["shares"] = [[product, share] for product, share in p.shares]
        if self.zones:
            doc["zones"] = [z.document() for z in self.zones]
        if p.funds_bins:  # a plan without bins keeps the document (and hash) it always had
            doc["traffic_edges_kmh"] = list(p.traffic_edges_kmh)
            if not self.traffic_drawn:
                doc["traffic_drawn"] = False
            if p.traffic_windows:
                doc["traffic_windows_per_device_day"] = p.traffic_windows
        return doc

    def to_json(self) -> str:
        return orjson.dumps(self.document(), option=orjson.OPT_SORT_KEYS).decode()

    @property
    def hash(self) -> int:
        """64 bits of SHA-256 over the canonical JSON (floats round-trip exactly in it)."""
        return int.from_bytes(hashlib.sha256(self.to_json().encode()).digest()[:8], "big")


def record_from_json(text: str) -> PlanRecord:
    """The record stored on an intent; ReleaseError if it is not one this code can read."""
    try:
        doc = orjson.loads(text)
        draws = tuple(
            Draw(d["metric"], int(d["res"]),
                 NoiseParams(d["mechanism"], int(d["bound"]), int(d["entries"]), float(d["scale"])),
                 float(d["rho"]), float(d["charge"]))
            for d in doc["draws"]
        )  # fmt: skip
        cells = tuple(d for d in draws if d.metric != TRAFFIC and not d.metric.startswith(SET_PREFIXES))
        traffic = next((d for d in draws if d.metric == TRAFFIC), None)
        zone_draws = tuple(d for d in draws if d.metric.startswith(ZONES_PREFIX))
        zone_traffic = tuple(d for d in draws if d.metric.startswith(TRAFFIC_PREFIX))
        plan = ReleasePlan(
            mechanism=doc["mechanism"],
            rho_per_day=float(doc["rho_per_day"]),
            delta=float(doc["delta"]),
            window_s=int(doc["window_s"]),
            windows_per_day=int(doc["windows_per_day"]),
            windows_per_device_day=int(doc["windows_per_device_day"]),
            base_resolution=int(doc["base_resolution"]),
            resolutions=tuple(int(r) for r in doc["resolutions"]),
            metrics=tuple(str(m) for m in doc["metrics"]),
            draws=cells,
            zone_draws=zone_draws,
            shares=tuple((str(p), float(s)) for p, s in doc.get("shares", ())),
            traffic_draw=traffic,
            traffic_edges_kmh=tuple(float(e) for e in doc.get("traffic_edges_kmh", ())),
            zone_traffic_draws=zone_traffic,
            traffic_windows=int(doc.get("traffic_windows_per_device_day", 0)),
        )
        zones = tuple(ZoneRef.of(z) for z in doc.get("zones", ()))
        return PlanRecord(plan, int(doc["speed_cap_kmh"]), str(doc["area"]), str(doc["rules"]), zones,
                          bool(doc.get("traffic_drawn", True)))  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ReleaseError(f"a stored release plan cannot be read ({type(exc).__name__})") from None
