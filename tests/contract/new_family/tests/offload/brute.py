import itertools

import numpy as np
from edgeplan.formulations.offload.offload import Offload, OffloadPlan

TYPES = (Offload,)


def plans(problem):
    for bits in itertools.product((0, 1), repeat=problem.local_s.size):
        yield OffloadPlan(np.array(bits))
