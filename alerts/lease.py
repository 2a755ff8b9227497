"""One active evaluator however many run: a lease by terms in ClickHouse (``alert_leases``).

Time is cut into terms of ``term_s`` seconds. Every process appends a claim for the current term;
the holder of a term is its earliest claim (by the claimant's clock, ties by name). A process
decides only ``settle_s`` after its own claim, so any claim made earlier than its own has been
acknowledged by then and is visible to its read (one ClickHouse node: an acknowledged INSERT is
visible to every later SELECT), provided the hosts' clocks agree to better than ``settle_s``. The
holder claims the next term during its own, so it keeps the lease while it runs; when it stops, a
newcomer's claim is the earliest of a later term and it takes over within two terms. The work done
under the lease is idempotent per window (evaluator.py), so a takeover in mid-window repeats
nothing; the lease keeps two delivery workers from sending the same webhook twice.
"""

from __future__ import annotations

import time

from hexpulse.store.pool import ClickHousePool

NS = 1_000_000_000


class Lease:
    def __init__(
        self, pool: ClickHousePool, holder: str, *, term_s: float = 10.0, settle_s: float = 1.0
    ) -> None:
        if settle_s * 4 > term_s:
            raise ValueError("the lease term must be at least four settle delays")
        self._pool = pool
        self.holder = holder
        self._term_ns = int(term_s * NS)
        self._settle_ns = int(settle_s * NS)
        self._claims: dict[int, int] = {}  # term → my claim time (ns)
        self._decided: dict[int, bool] = {}

    def _claim(self, term: int, now_ns: int) -> None:
        if term not in self._claims:
            self._pool.insert("INSERT INTO alert_leases (term, holder, claimed_ns) VALUES",
                              [(term, self.holder, now_ns)])  # fmt: skip
            self._claims[term] = now_ns

    def _decide(self, term: int, now_ns: int) -> bool | None:
        if term in self._decided:
            return self._decided[term]
        if now_ns - self._claims[term] < self._settle_ns:
            return None  # too early: an earlier claim might not be visible yet
        rows = self._pool.query(
            "SELECT holder FROM alert_leases WHERE term = %(t)s ORDER BY claimed_ns, holder LIMIT 1",
            {"t": term},
        )
        self._decided[term] = bool(rows) and rows[0][0] == self.holder
        return self._decided[term]

    def holds(self, now_ns: int | None = None) -> bool:
        """Whether this process holds the lease now (claims as needed; call at least once a term)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        term = now_ns // self._term_ns
        self._claim(term, now_ns)
        held = self._decide(term, now_ns) is True
        if held:
            self._claim(term + 1, now_ns)  # renew ahead: earlier than any claim made during the next term
        for old in [t for t in self._claims if t < term - 1]:
            self._claims.pop(old)
            self._decided.pop(old, None)
        return held
