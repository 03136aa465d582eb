from __future__ import annotations

import numpy as np
from edgeplan.formulations.offload.offload import Offload, OffloadPlan

from edgeplan.formulations.milp import MILP
from edgeplan.registry import reduction


@reduction(Offload)
def offload_milp(problem: Offload):
    n = problem.local_s.size
    milp = MILP(c=problem.remote_s - problem.local_s, A=[problem.load], row_upper=problem.capacity, col_upper=1,
                integrality=np.ones(n), constant=float(problem.local_s.sum()))
    return milp, lambda x: OffloadPlan((np.asarray(x) > 0.5).astype(int))
