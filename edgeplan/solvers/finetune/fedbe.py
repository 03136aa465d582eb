r"""``fedbe``: FedBE's allocation of expanded blocks by capacity and data skew [reconstruction;
``docs/models/finetune.md``].

1. **Capacity.** Each device's budget is the largest number of blocks it can train within its memory; it takes,
   among the subsets of that size that fit, the one of highest affinity (skewed clients prefer shallow
   blocks), the fastest among equals.
2. **Coverage.** While a block :math:`j` is trained by fewer than :math:`m_j` devices, the device not yet
   training it with the highest attainable utility switches to its best fitting subset that adds :math:`j` and
   keeps the blocks it covers alone; no such device: no plan.

It ignores the round time (a device trains as much as it can hold), which is what the exact methods improve.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.solvers.finetune.finetune_sweep import no_candidate
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def _needs_blocks(problem: FineTuneRound) -> str | None:
    return None if problem.coverage is not None else "needs a coverage table (FedBE's block subsets)"


def _best(problem: FineTuneRound, i: int, mask: np.ndarray) -> int:
    u = np.where(mask, problem.weighted_utility()[i], -np.inf)
    tie = mask & (u == u.max())
    return int(np.argmin(np.where(tie, problem.device_time_table()[i], np.inf)))


def allocate(problem: FineTuneRound) -> FineTunePlan | None:
    """Steps 1 and 2 (None: coverage cannot be repaired)."""
    ok, cov = problem.allowed(), problem.coverage
    size = cov.sum(axis=2)  # (N, K) blocks per candidate
    choice = np.empty(problem.n_devices, dtype=int)
    for i in range(problem.n_devices):
        biggest = size[i][ok[i]].max()
        choice[i] = _best(problem, i, ok[i] & (size[i] == biggest))
    rows = np.arange(problem.n_devices)
    for _ in range(problem.n_devices * problem.n_blocks + 1):
        counts = cov[rows, choice].sum(axis=0)
        short = np.flatnonzero(counts < problem.min_coverage)
        if short.size == 0:
            return FineTunePlan(choice)
        j = int(short[0])
        best = None
        for i in np.argsort(-problem.weighted_utility().max(axis=1)):
            cur = cov[i, choice[i]]
            if cur[j]:
                continue
            alone = cur & (counts == problem.min_coverage)  # blocks that would drop below their floor
            mask = ok[i] & cov[i, :, j] & (cov[i] >= alone).all(axis=1)
            if mask.any():
                best = (int(i), _best(problem, int(i), mask))
                break
        if best is None:
            return None
        choice[best[0]] = best[1]
    return None


@register("fedbe", problem=FineTuneRound, kind="heuristic", priority=30, refuses=_needs_blocks)
def solve_fedbe(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """FedBE: each device trains as many expanded blocks as it holds (by affinity), then coverage repair."""
    t0 = time.perf_counter()
    why = no_candidate(problem)
    plan = None if why else allocate(problem)
    return heuristic_result(problem, plan, "fedbe", t0, infeasible=why,
                            dead_end="no device can take an uncovered block")


__all__ = ["allocate", "solve_fedbe"]
