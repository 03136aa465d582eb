"""Every plan of a small speculative-serving step: each request out, batched without drafters, or batched with a
drafter set and a speculation length."""

from __future__ import annotations

import itertools

from edgeplan.formulations.serving import ServingPlan, SpeculativeServing

TYPES = (SpeculativeServing,)


def plans(p):
    options = [None, ((), 0)]
    options += [(S, k) for S in p.routes_of() if S for k in range(1, p.max_speculation + 1)]
    for choice in itertools.product(options, repeat=p.n_requests):
        yield ServingPlan([None if c is None else c[0] for c in choice], [0 if c is None else c[1] for c in choice])
