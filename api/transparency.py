"""The public transparency page (``GET /privacy``): what a resident would want to read, as HTML.

Server-rendered, no script, one small stylesheet (``/static/privacy.css``), printable. Every value
comes from the privacy report (``api.privacy_report``, the same one ``/v1/privacy`` serves), the
settings, the release plan and the released windows, and every value is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from api.area_summary import SVG_WIDTH, AreaSummary
from hexpulse.settings import Settings
from privacy.release.budget import ReleasePlan
from releases.models import Window
from releases.smoothing import SmoothingParams


@dataclass(frozen=True)
class PageFacts:
    """Everything the page shows. ``recent``: released windows, newest first; ``now``: UTC."""

    settings: Settings
    report: dict[str, Any]
    plan: ReleasePlan
    recent: Sequence[Window]
    now: datetime
    area: AreaSummary
    smoothing: SmoothingParams


def num(value: float | int | None, digits: int = 2) -> str:
    """A number for people: thousands separated, ``digits`` significant decimals, "—" for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:,.{digits}f}" if abs(value) >= 10**-digits else f"{value:.2g}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def probability(p: float) -> str:
    """δ for people: a power of ten as 10⁻⁶, anything else as is."""
    exponent = math.log10(p) if p > 0 else 0.0
    return f"10{str(round(exponent)).translate(_SUPERSCRIPT)}" if exponent.is_integer() else f"{p:g}"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _row(*cells: object, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{_e(c)}</{tag}>" for c in cells) + "</tr>"


def _table(head: Sequence[object], rows: Sequence[Sequence[object]], cls: str = "") -> str:
    attr = f' class="{_e(cls)}"' if cls else ""
    body = "".join(_row(*r) for r in rows)
    return f"<table{attr}><thead>{_row(*head, head=True)}</thead><tbody>{body}</tbody></table>"


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def window_word(s: Settings) -> str:
    """What one release covers, in words: "minute" for the default 60 s windows."""
    return "minute" if s.window_s == 60 else f"{s.window_s}-second window"


def _collected_rows(s: Settings) -> list[tuple[str, str, str]]:
    return [  # fmt: skip
    ("device", "the sender's device identifier", "replaced on arrival by a pseudonym (below), then dropped"),
    ("ts", "time of the fix (ms, UTC)", f"only the {window_word(s)} it falls in is kept"),
    ("lat, lon", "position (degrees)", "only the H3 cell (~0.1 km² hexagon) it falls in is kept"),
    ("spd", "speed (m/s), optional", "decides moving or not; adds to the cell's speed sum (capped)"),
    ("acc, hdg, src", "accuracy, heading, positioning source (optional)", "checked, then dropped"),
    ]  # fmt: skip


def _collected(s: Settings) -> str:
    return f"""<section id="collected"><h2>What is collected, and what is never stored</h2>
<p>Apps and carriers send location pings. Each ping carries these fields; this is what happens to them:</p>
{_table(("field", "what it is", "what hexpulse keeps"), _collected_rows(s))}
<p>What hexpulse stores is mostly counts: per {_e(window_word(s))} and per hexagon, how many devices were
there, how many were moving and the sum of their speeds. To bound what one device adds over a day,
it also keeps, under that day's pseudonym only: which pseudonyms were in a tourism area and which
were moving in each {_e(window_word(s))}, and, for about the last hour or two only, the hexagon and speed
band of each moving one (so that a device counts in traffic in at most
{_e(num(s.traffic_window_bound))} of its moving {_e(window_word(s))}s a day). All of this exact data is
kept in a restricted database that no public interface can read; the last hours' moving hexagons
are deleted once their {_e(window_word(s))}s are released, the rest {_e(num(s.partials_grace_h))} h after
the day is released.
Only the noisy releases below are published (kept {_e(num(s.release_retention_days))} days).</p>
<p><strong>Never stored</strong> by hexpulse: device identifiers, precise coordinates, a pseudonym past its
day (the day's key is destroyed), or a device's tracks beyond the last hours' moving hexagons above.
Logs and metrics never contain a device identifier, pseudonym or coordinate.</p>
<p>Raw pings wait in the input queue for at most {_e(num(s.topic_pings_retention_h))} h (so a failure
can be replayed). Rejected messages go to a dead-letter queue encrypted with a daily key, kept
{_e(num(s.topic_dlq_retention_h))} h; the key is destroyed after {_e(num(s.key_retention_days))} days.</p>
</section>"""


def _pseudonyms(s: Settings) -> str:
    return f"""<section id="pseudonyms"><h2>How pseudonyms rotate</h2>
<p>On arrival a device identifier is replaced by a keyed hash whose key changes every day at
00:00 UTC. The pseudonym lives only in the memory of the counting process, for the {_e(window_word(s))} being
counted. Each day's key is destroyed after {_e(num(s.key_retention_days))} days: after that nobody,
including the operator, can link a day's pseudonyms back to devices or to another day.</p></section>"""


def _guarantee(f: PageFacts) -> str:
    r, s = f.report, f.settings
    day, week = r["epsilon_per_day"], r["epsilon_per_week"]
    delta = r["delta"]
    rows = [
        ("one device, one day", num(day["rho"], 4), num(day["zcdp_conversion"]), num(day["rdp_accountant"])),
        ("one device, one week (7 days)", num(week["rho"], 4), num(week["zcdp_conversion"]),
         num(week["rdp_accountant"])),
    ]  # fmt: skip
    return f"""<section id="guarantee"><h2>The guarantee</h2>
<p class="lead">Take any phone on any day. Whether that phone's pings of that day were used or not
changes the chance of anything hexpulse publishes — every map, every {_e(window_word(s))}, every
number together — by at most a factor e<sup>ε</sup>, except with probability
δ = {_e(probability(delta))}. Crowds stay visible; one person's presence does not.</p>
<p>Each device counts in at most {_e(num(s.cells_per_window))} hexagon(s) per {_e(window_word(s))}, and
random noise is added once to every published number. The budget is ρ = {_e(num(r["budget_rho_per_day"], 4))}
(zero-concentrated differential privacy, zCDP) per device and day; {_e(r["mechanism"])} noise.</p>
{_table(("unit", "ρ (zCDP)", "ε, zCDP conversion", "ε, RDP accountant (tighter)"), rows, "numbers")}
<p class="note">Two valid conversions of the same ρ into (ε, δ) at δ = {_e(probability(delta))}. A week is
seven device-days composed; a person with two phones counts as two devices.</p></section>"""


def _plan(f: PageFacts) -> str:
    per_day = f.plan.windows_per_device_day / f.plan.rho_per_day
    draws = [(d.metric, d.res, num(d.params.sigma), num(d.rho * per_day)) for d in f.plan.draws]
    out = f"""<section id="budget-plan"><h2>How the budget is split</h2>
<p>Each window ({_e(num(f.plan.window_s))} s) gets 1/{_e(num(f.plan.windows_per_device_day))} of the
daily budget, split over what is measured. Coarser maps not listed are sums of finer ones
(free). σ is the noise standard deviation of one measured number, in devices (in km/h for speed
sums).</p>
{_table(("measured", "H3 resolution", "σ", "share of the budget"), draws, "numbers")}"""
    rows = f.report.get("budget_plan")
    if rows:
        plan_rows = [
            (r["product"], f"per {r['per']}", num(r["share"]), num(r["rho_per_device_day"], 4),
             num(r["epsilon_per_device_day"]), num(r["sigma"]), r["what"])
            for r in rows
        ]  # fmt: skip
        out += f"""<h3>The budget plan: every product</h3>
{
            _table(
                (
                    "product",
                    "measured",
                    "share",
                    "ρ per device-day",
                    "ε per device-day",
                    "σ (devices)",
                    "what",
                ),
                plan_rows,
                "numbers plan",
            )
        }
<p>Unallocated: {_e(num(f.report.get("unallocated_share", 0.0)))} of the budget.</p>"""
    if f.plan.funds_bins and f.plan.traffic_window_bound < f.plan.windows_per_device_day:
        out += f"""
<p>Traffic (speed bins) counts each device in at most its first {_e(num(f.plan.traffic_window_bound))}
moving {_e(window_word(f.settings))}s of the day, so each of those gets
1/{_e(num(f.plan.traffic_window_bound))} of the traffic share; a device moving longer is left out of the
traffic numbers for the rest of that day (never out of the crowd maps).</p>"""
    return out + "</section>"


def _spent(f: PageFacts) -> str:
    r = f.report
    share = r["rho_spent_today"] / r["budget_rho_per_day"] if r["budget_rho_per_day"] else 0.0
    return f"""<section id="spent"><h2>Budget spent today ({_e(r["day"])}, UTC)</h2>
<p><span class="big">{_e(num(100 * share, 1))}%</span> of the daily budget:
ρ = {_e(num(r["rho_spent_today"], 4))} of {_e(num(r["budget_rho_per_day"], 4))}
(ε = {_e(num(r["epsilon_spent_today"]))} of {_e(num(r["epsilon_budget_per_day"]))} by the zCDP conversion),
{_e(num(r["noise_draws_today"]))} noise draws recorded in the append-only ledger. The releaser refuses
to publish a {_e(window_word(f.settings))} that would exceed the budget.</p></section>"""


def _cadence(f: PageFacts) -> str:
    s, recent = f.settings, f.recent
    latest = recent[0] if recent else None
    lags = [w.lag_s for w in recent]
    if latest is None:
        state = "<p>Nothing has been released yet.</p>"
    else:
        ago = (f.now - latest.end).total_seconds()
        state = (
            f"<p>Latest release: the window {_e(latest.start.strftime('%H:%M'))}–"
            f"{_e(latest.end.strftime('%H:%M UTC, %Y-%m-%d'))}, published {_e(num(latest.lag_s, 1))} s "
            f"after it was complete ({_e(num(ago, 0))} s ago). Over the last {_e(len(recent))} releases "
            f"95% were published within {_e(num(_percentile(lags, 0.95), 1))} s.</p>"
        )
    return f"""<section id="cadence"><h2>Release cadence and lag</h2>
<p>One release per {_e(num(s.window_s))}-second window. Pings may arrive up to {_e(num(s.lateness_s))} s
late; a window is released once every input partition has closed it.</p>{state}</section>"""


def _area(f: PageFacts) -> str:
    a = f.area
    cells = ", ".join(f"{num(n)} at resolution {res}" for res, n in a.cells.items())
    lon0, lat0, lon1, lat1 = a.bounds
    svg = (
        f'<svg class="outline" viewBox="-4 -4 {SVG_WIDTH + 8:.0f} {a.svg_height + 8:.0f}" role="img" '
        f'aria-label="outline of the service area"><path d="{_e(a.svg_path)}"/></svg>'
    )
    return f"""<section id="area"><h2>The service area</h2>{svg}
<p>{_e(num(a.cells_km2, 1))} km² covered by hexagons: {_e(cells)}. Every hexagon is published every
{_e(window_word(f.settings))}, zeros included, so which hexagons appear never depends on who was there.</p>
<p>Bounds: longitude {_e(f"{lon0:.4f}")} to {_e(f"{lon1:.4f}")}, latitude {_e(f"{lat0:.4f}")} to
{_e(f"{lat1:.4f}")} (WGS 84). Pings outside are counted as such and dropped.</p></section>"""


def _numbers(f: PageFacts) -> str:
    sigma = min((d.params.sigma for d in f.plan.draws if d.metric == "count"), default=float("nan"))
    return f"""<section id="numbers"><h2>What the numbers are not</h2><ul>
<li><strong>Estimates, not counts.</strong> Every published number comes with its standard deviation
and a 95% interval. Read the interval, not the number.</li>
<li><strong>Small counts are noise.</strong> The noise of one hexagon and {_e(window_word(f.settings))} is
about {_e(num(sigma, 0))} devices (σ), so a hexagon shown with fewer than about {_e(num(2 * sigma, 0))}
devices cannot be told apart from an empty one. Crowds of thousands are measured within a few percent.</li>
<li><strong>Smoothed values are labelled.</strong> The live map may show values smoothed across the last
{_e(num(f.smoothing.windows))} releases ({_e(f.smoothing.describe())}): less noise, some lag when a crowd
arrives or leaves; the raw estimate stays available.</li>
<li><strong>Not people, not tracks.</strong> A device-day is the unit: nothing here follows a person
across days, and nothing can be traced back to a record.</li></ul></section>"""


def _more() -> str:
    return """<section id="more"><h2>Where to read more</h2><ul>
<li><code>PRIVACY.md</code> in the source repository: the guarantee in symbols, the threat model (who
can see what), what is not protected (crowds are visible by design; a person carrying a phone for k days
is protected at k times the daily budget), retention and the mapping to data-protection law.</li>
<li><code>docs/KEYS.md</code>: pseudonym keys, encryption of rejected messages, deletion of keys and
exact data.</li>
<li><a href="/docs">The API reference</a>; machine-readable figures at <code>GET /v1/privacy</code>
(needs a key).</li></ul></section>"""


def render(facts: PageFacts) -> str:
    """The whole page as one HTML document (UTF-8)."""
    generated = facts.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    s = facts.settings
    pace = "minute by minute" if s.window_s == 60 else f"every {s.window_s} seconds"
    body = "".join(
        (_guarantee(facts), _collected(facts.settings), _pseudonyms(facts.settings), _plan(facts),
         _spent(facts), _cadence(facts), _area(facts), _numbers(facts), _more())
    )  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hexpulse · privacy and transparency</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/privacy.css"></head>
<body><header><h1>Privacy and transparency</h1>
<p>hexpulse publishes how many devices are in each part of the city, {_e(pace)}, with
differential privacy. This page says what is collected, what is kept, and how well you are protected.
<a href="/">Live map</a></p></header>
<main>{body}</main>
<footer><p>Generated {_e(generated)} from the running configuration and the release ledger.</p></footer>
</body></html>
"""
