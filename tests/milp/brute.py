"""Every plan of a small pure-integer MILP: the integer points of its (finite) box."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from edgeplan import MILP

#: Problem types whose plans this module enumerates (the contract tests look them up).
TYPES = (MILP,)


def plans(p: MILP) -> Iterator[np.ndarray]:
    if not p.integrality.all() or not (np.isfinite(p.col_lower).all() and np.isfinite(p.col_upper).all()):
        raise ValueError("only pure-integer MILPs with finite bounds are enumerable")
    axes = [range(int(np.ceil(lo)), int(np.floor(hi)) + 1) for lo, hi in zip(p.col_lower, p.col_upper, strict=True)]
    for point in itertools.product(*axes):
        yield np.array(point, dtype=float)
