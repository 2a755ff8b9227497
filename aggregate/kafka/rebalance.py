"""kafka-python's rebalance callbacks, forwarded to the consume loop with their failures logged."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterator
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener

from hexpulse.logs import log_event

log = logging.getLogger(__name__)


class RebalanceTarget(Protocol):
    def on_revoked(self, partitions: list[int], *, lost: bool = False) -> None: ...
    def on_assigned(self, partitions: list[int]) -> None: ...


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: RebalanceTarget) -> None:
        self._loop = loop

    # kafka-python swallows a callback's exception into a bare "User rebalance callback throws an
    # error" from poll(); log what it was first, or the cause is lost.
    def on_partitions_revoked(self, revoked: Any) -> None:
        with _logged("revoke"):
            self._loop.on_revoked([tp.partition for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        with _logged("assign"):
            self._loop.on_assigned([tp.partition for tp in assigned])

    def on_partitions_lost(self, lost: Any) -> None:
        # Evicted: another member may own them already, so drop without committing.
        with _logged("lose"):
            self._loop.on_revoked([tp.partition for tp in lost], lost=True)


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-3:]
        log_event(
            log,
            "rebalance callback failed",
            logging.ERROR,
            on=what,
            error=type(exc).__name__,
            at=[f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in where],
        )
        raise
