"""H3 cells as hexpulse holds them inside: ``uint64`` indexes (hex strings only at the API)."""

from __future__ import annotations

from collections.abc import Iterable

import h3
import numpy as np
import numpy.typing as npt


def parent_of(cell: int, res: int) -> int:
    """The cell containing ``cell`` at the coarser resolution ``res``."""
    return int(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), res)))


def parents_of(cells: Iterable[int], res: int) -> npt.NDArray[np.uint64]:
    """:func:`parent_of` of each cell, in the same order."""
    return np.array([parent_of(int(c), res) for c in cells], dtype=np.uint64)
