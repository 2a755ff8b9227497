"""The privacy audit's pipeline: neighbouring datasets through the deployed ingest → aggregate →
release code, in process (no broker, no ClickHouse; the same objects the consumer and the
releaser run).

The service area is 91 whole res-8 families (a res-8 cell and its 7 res-9 children) and the
release measures resolutions 9 and 8. Noise is independent per cell and reconciliation acts
within a family, so each family of one released window is an independent run of the mechanism
on its own data: every family holds the same neighbouring pair, and one window yields 91
samples of the family's whole released output (every cell, both resolutions, every
metric). D has 6–12 ordinary devices in every cell; D′ adds, in every family, one adversarial
device (20 pings in the centre child and 3 in each sibling at 60 m/s, a duplicate re-send,
pings on both window edges and in the next window).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import orjson
from shapely.geometry import Polygon
from shapely.ops import unary_union

from aggregate.sink import Resume
from aggregate.state import Aggregator
from aggregate.windows import Closing
from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings, load_settings
from ingest import Ingestor
from privacy.keys.keyring import KeyRing
from privacy.keys.pseudonyms import RotatingPseudonymizer
from privacy.release.budget import ReleasePlan, plan_from_settings
from privacy.release.consistency import Estimate, Hierarchy, build_hierarchy
from privacy.release.mechanisms import IntVector
from privacy.release.seeds import fresh_keys
from privacy.release.values import exact_totals, release_values
from tests.support.audit_stats import ALPHA, AuditResult, audit, gdp_mu
from tests.support.ingest import INSIDE, NOW_MS, ListSink, record
from tests.support.keys import MASTER, FakeClock

FAMILY = 7
RINGS = 5  # res-8 cells within 5 steps of the centre: 91 families, 637 base cells
WINDOW_MS = NOW_MS + 10 * 60_000
"""Start (ms since the epoch) of the audited window; 60 s windows, 30 s lateness."""
RHO_PER_WINDOW = 0.5
"""zCDP ρ of one window for a device in it: μ = √(2ρ) = 1 in Gaussian-DP terms, where tests of a
shift of 2 (σ halved, Δ = 2) are cheapest to tell apart from the claim."""
ADVERSARY_MPS = 60.0  # above the 50 m/s clamp: the speed sum moves by its full bound
Message = tuple[int, bytes, bytes]  # (record timestamp ms, key, value)


def audit_settings(**extra: Any) -> Settings:
    """The deployed defaults, with a generous per-window budget and releases at 9 and 8."""
    windows_per_day = 86_400 // 60
    values: dict[str, Any] = {
        "window_s": 60,
        "lateness_s": 30,
        "release_resolutions": (9, 8),
        "budget_rho_per_day": RHO_PER_WINDOW * windows_per_day,
        "budget_plan": ("cells:1",),  # the audit draws the cells' release: all of the window's ρ
        "windows_per_device_day": windows_per_day,
        "topic_partitions": 1,
        "consumer_max_poll_records": 5000,
    }
    return load_settings(**(values | extra))


def audit_area() -> ServiceArea:
    """Whole res-8 families around Tianhe; base cells sorted, so each family is contiguous."""
    parents = sorted(h3.grid_disk(h3.latlng_to_cell(*INSIDE, 8), RINGS))
    cells = [h3.str_to_int(c) for p in parents for c in sorted(h3.cell_to_children(p, 9))]
    shapes = [Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(p)]) for p in parents]
    area = ServiceArea(unary_union(shapes), 9, np.array(cells, dtype=np.uint64))
    assert bool(np.all(np.diff(area.cells.astype(np.int64)) > 0)), "families must be contiguous"
    return area


@dataclass(frozen=True)
class Neighbours:
    """Messages of D, and of the adversarial devices that D′ adds (one per family)."""

    ordinary: list[Message]
    adversaries: list[Message]

    def dataset(self, with_adversaries: bool) -> list[Message]:
        msgs = self.ordinary + (self.adversaries if with_adversaries else [])
        return sorted(msgs, key=lambda m: m[0])  # the broker appends in arrival order


def _point(cell: int, rng: random.Random) -> tuple[float, float]:
    """A point near the centre of ``cell`` (within ~10 m: res-9 edges are ~170 m)."""
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    return round(lat + rng.uniform(-9e-5, 9e-5), 6), round(lon + rng.uniform(-9e-5, 9e-5), 6)


def _message(device: str, pings: list[dict[str, Any]], delay_ms: int) -> Message:
    body = (
        {"v": 1, "device": device, **pings[0]}
        if len(pings) == 1
        else {"v": 1, "device": device, "pings": pings}
    )
    return (max(int(p["ts"]) for p in pings) + delay_ms, device.encode(), orjson.dumps(body))


def neighbours(area: ServiceArea, seed: int = 7) -> Neighbours:
    rng = random.Random(seed)
    ordinary: list[Message] = []
    for i, cell in enumerate(area.cells.tolist()):
        for d in range(6 + (i * 5) % 7):
            kind = rng.choice(("moving", "moving", "still", "unreported"))
            t = WINDOW_MS + rng.randrange(0, 40_000)
            pings: list[dict[str, Any]] = []
            for _ in range(rng.randint(2, 5)):
                lat, lon = _point(cell, rng)
                p: dict[str, Any] = {"ts": t, "lat": lat, "lon": lon}
                if kind != "unreported":
                    p["spd"] = round(rng.uniform(3, 20) if kind == "moving" else rng.uniform(0, 1), 2)
                pings.append(p)
                t += rng.randrange(1000, 5000)
            ordinary.append(_message(f"audit-{i}-{d}", pings, rng.randrange(0, 3000)))
    adversaries: list[Message] = []
    for f in range(area.cells.size // FAMILY):
        family = area.cells[f * FAMILY : (f + 1) * FAMILY].tolist()
        device = f"audit-adversary-{f}"
        cells = [family[0]] * 20 + [c for c in family[1:] for _ in range(3)]
        pings = []
        for k, cell in enumerate(cells):
            lat, lon = _point(cell, rng)
            ts = WINDOW_MS + (0 if k == 0 else 59_999 if k == 1 else 1_000 + k * 1_400)
            pings.append({"ts": ts, "lat": lat, "lon": lon, "spd": ADVERSARY_MPS})
        later = [{"ts": WINDOW_MS + 60_000 + 5_000 * k, "lat": pings[0]["lat"], "lon": pings[0]["lon"]}
                 for k in range(2)]  # fmt: skip
        first, rest = _message(device, pings[:10], 500), _message(device, pings[10:], 200)
        adversaries += [first, rest, (first[0] + 4_000, first[1], first[2]), _message(device, later, 300)]
    # A quiet device whose ping closes the audited window (its own window is never released).
    lat, lon = _point(area.cells[0], rng)
    clock = {"ts": WINDOW_MS + 150_000, "lat": lat, "lon": lon}
    ordinary.append(_message("audit-clock", [clock], 1_000))
    return Neighbours(ordinary, adversaries)


@dataclass
class MemorySink:
    """Stands in for aggregate's ClickHouse sink: keeps every closing it is asked to write."""

    closings: list[Closing] = field(default_factory=list)

    def write(self, topic: str, closings: list[Closing]) -> None:
        self.closings.extend(closings)

    def load_resume(self, topic: str, partition: int) -> Resume:
        return Resume(None, None, 0)  # a fresh partition

    def claim(self, topic: str, partition: int, resume: Resume, generation: int) -> int:
        return resume.epoch + 1


def aggregate_window(settings: Settings, area: ServiceArea, messages: Sequence[Message], state: Path,
                     *, count_twice: bool = False) -> dict[str, IntVector]:  # fmt: skip
    """The audited window's exact totals per base cell, as the releaser would read them.

    The records go through ingest (decoder, validation, binning, the real key ring's pseudonyms)
    and aggregate's per-partition state (windows, dedupe, bounding) poll by poll, like the
    consumer loop. ``count_twice`` seeds the Δ = 2 bug: every partial row is summed twice (a
    device's rows stored under two keys, e.g. its records in two partitions).
    """
    ring = KeyRing(state / "keyring.bin", MASTER, settings.key_retention_days, FakeClock(WINDOW_MS))
    ring.ensure_current()
    dlq = ListSink()
    ingestor = Ingestor(settings, area, RotatingPseudonymizer(ring), dlq)
    sink = MemorySink()
    agg = Aggregator(settings, sink, settings.topic_pings)  # type: ignore[arg-type]
    agg.init_partition(0)
    records = [record(value, offset, key, ts) for offset, (ts, key, value) in enumerate(messages)]
    step = settings.consumer_max_poll_records
    for i in range(0, len(records), step):
        poll = records[i : i + step]
        accepted = ingestor.ingest(settings.topic_pings, 0, poll, None)
        agg.add(0, accepted, accepted.record_ts, poll[-1].offset + 1, accepted.pings_in, accepted.rejected)
    agg.flush()
    assert not dlq.letters, f"the audit's pings must all be valid: {dlq.letters[0][0]}"
    rows = [
        (cell, devices, moving, speed)
        for closing in sink.closings
        for window, cell, devices, moving, speed in closing.partials.rows()
        if window == WINDOW_MS
    ]
    exact, outside = exact_totals(area.cells, rows * 2 if count_twice else rows)
    assert outside == 0
    return exact


def family_samples(tree: Hierarchy, values: dict[str, Estimate]) -> npt.NDArray[np.float64]:
    """One row per family: its released values and unconstrained estimates, every metric and level."""
    families = tree.sizes[1]
    cols: list[npt.NDArray[np.float64]] = []
    for est in values.values():
        for k, per_family in ((0, FAMILY), (1, 1)):
            cols.append(est.values[k].reshape(families, per_family).astype(np.float64))
            cols.append(est.unconstrained[k].reshape(families, per_family))
    return np.hstack(cols)


@dataclass(frozen=True)
class Release:
    """What the audit draws from: the plan, the public partitions and their family layout."""

    plan: ReleasePlan
    tree: Hierarchy

    @classmethod
    def of(cls, settings: Settings, area: ServiceArea) -> Release:
        plan = plan_from_settings(settings)
        tree = build_hierarchy(area, plan.resolutions)
        expected = np.repeat(np.arange(tree.sizes[1]), FAMILY)
        assert np.array_equal(tree.parent[0], expected), "every res-8 family must be whole"
        return cls(plan, tree)

    def samples(self, exact: dict[str, IntVector], n: int,
                plan: ReleasePlan | None = None) -> npt.NDArray[np.float64]:  # fmt: skip
        """``n`` (or a few more) family samples of the window's release, each window drawn afresh."""
        return np.vstack(list(_draws(plan or self.plan, self.tree, exact, n)))


def _draws(plan: ReleasePlan, tree: Hierarchy, exact: dict[str, IntVector], n: int) -> Iterator[Any]:
    got = 0
    while got < n:
        # Fresh keys per window, as the releaser's keys differ per window and per exact input.
        rows = family_samples(tree, release_values(plan, tree, exact, fresh_keys()).metrics)
        got += rows.shape[0]
        yield rows


TRAIN, HELD_OUT = 1000, 1500
"""Family samples per dataset (91 per drawn window) that learn the test, then measure it."""


@dataclass
class Auditor:
    """One audit set-up: the exact totals of each dataset variant and its draws, computed once."""

    state: Path
    settings: Settings = field(default_factory=audit_settings)
    area: ServiceArea = field(default_factory=audit_area)
    _exact: dict[tuple[object, ...], dict[str, IntVector]] = field(default_factory=dict)
    _draws: dict[tuple[object, bytes], npt.NDArray[np.float64]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = neighbours(self.area)
        self.release = Release.of(self.settings, self.area)

    def exact(
        self, with_adversaries: bool, *, count_twice: bool = False, **settings: Any
    ) -> dict[str, IntVector]:
        """The audited window's exact totals of D (or D′) under ``settings`` overrides."""
        key = (with_adversaries, count_twice, *sorted(settings.items()))
        if key not in self._exact:
            s = audit_settings(**settings) if settings else self.settings
            self._exact[key] = aggregate_window(s, self.area, self.data.dataset(with_adversaries), self.state,
                                                count_twice=count_twice)  # fmt: skip
        return self._exact[key]

    def _samples(self, exact: dict[str, IntVector], plan: ReleasePlan) -> npt.NDArray[np.float64]:
        key = (plan.draws, b"".join(v.tobytes() for v in exact.values()))
        if key not in self._draws:
            self._draws[key] = self.release.samples(exact, TRAIN + HELD_OUT, plan)
        return self._draws[key]

    def run(self, x0: dict[str, IntVector], x1: dict[str, IntVector],
            plan: ReleasePlan | None = None) -> AuditResult:  # fmt: skip
        """Audit the release of D (``x0``) against D′ (``x1``), drawn under ``plan`` (default: the
        deployed one); the claim is always the deployed plan's μ."""
        a0, a1 = (self._samples(x, plan or self.release.plan) for x in (x0, x1))
        claimed = gdp_mu(self.release.plan.rho_cells_per_window)
        return audit((a0[:TRAIN], a1[:TRAIN]), (a0[TRAIN:], a1[TRAIN:]), claimed, ALPHA)

    def forget_draws(self) -> None:
        self._draws.clear()


def halve_sigma(plan: ReleasePlan) -> ReleasePlan:
    """Seeded bug: every draw uses half the σ that its charged ρ pays for (ρ × 4, μ × 2)."""
    draws = tuple(
        dataclasses.replace(d, params=dataclasses.replace(d.params, scale=d.params.scale / 2))
        for d in plan.draws
    )
    return dataclasses.replace(plan, draws=draws)
