"""The MILP of :class:`~edgeplan.formulations.finetune.experts.ExpertSelection` (every MILP backend solves it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeplan.formulations.finetune.experts import ExpertPlan, ExpertSelection
from edgeplan.formulations.milp import MILP
from edgeplan.registry import reduction


@reduction(ExpertSelection)
def expert_milp(problem: ExpertSelection) -> tuple[MILP, Callable[[np.ndarray], ExpertPlan]]:
    """0/1 knapsack with a cardinality row; experts outside the routed set have upper bound 0."""
    e = problem.n_experts
    rows = [problem.cost]
    upper = [problem.budget]
    if problem.max_experts is not None:
        rows.append(np.ones(e))
        upper.append(float(problem.max_experts))
    milp = MILP(c=problem.importance, A=np.array(rows), row_upper=np.array(upper),
                col_upper=problem.routed.astype(float), integrality=np.ones(e), sense="max",
                row_names=["budget", "max_experts"][:len(rows)], name=f"{problem.name}-knapsack")
    return milp, lambda x: ExpertPlan(np.flatnonzero(np.asarray(x) > 0.5))


__all__ = ["expert_milp"]
