"""Every plan of a small FL round on resource blocks: selections, BSs and block counts.

For the energy round the clock and power of a (user, BS, bandwidth) point are its time split's optimum
(``FLRoundEnergy.schedule_from_points``; the time split itself is checked against scipy in test_fl_energy), so
what is enumerated here is every discrete decision.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgeplan.formulations.fl import FLRound, FLRoundEnergy, FLSchedule
from fl.helpers import assignments

TYPES = (FLRound, FLRoundEnergy)


def plans(p):
    if p.resource_block_hz is None:
        raise ValueError("only resource-block rounds are enumerable (continuous bandwidth is not)")
    blocks = np.floor(p.bs_bandwidth_hz / p.resource_block_hz * (1 + 1e-12)).astype(int)
    for c, _ in assignments(p):
        users = np.flatnonzero(c >= 0)
        for ks in itertools.product(*(range(1, blocks[c[u]] + 1) for u in users)):
            ks = np.asarray(ks, dtype=int)
            if np.any(np.bincount(c[users], weights=ks, minlength=blocks.size) > blocks):
                continue
            band = ks * p.resource_block_hz
            if isinstance(p, FLRound):
                bandwidth = np.zeros(c.size)
                bandwidth[users] = band
                yield FLSchedule(c, bandwidth)
            else:
                yield p.schedule_from_points(users, c[users], band)
