from __future__ import annotations

import numpy as np
from edgeplan.formulations.offload.offload import Offload

from edgeplan.registry import generator


@generator("offload", tiny=({"n_tasks": 5}, {"n_tasks": 6, "tight": True}))
def random_offload(n_tasks: int = 20, *, tight: bool = False, seed: int = 0) -> Offload:
    """Random tasks (whole microseconds): local 1-10 ms, remote 0.5-4 ms, loads 1-5; capacity a third (tight: a
    tenth) of the load."""
    rng = np.random.default_rng(seed)
    load = rng.integers(1, 6, n_tasks).astype(float)
    return Offload(rng.integers(1000, 10000, n_tasks) * 1e-6, rng.integers(500, 4000, n_tasks) * 1e-6, load,
                   float(load.sum() // (10 if tight else 3)))
