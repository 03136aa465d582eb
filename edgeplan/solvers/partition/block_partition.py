r"""torchgpipe's ``balance_by_time``: block partition of the layers' times (Bárány and Grinberg).

torchgpipe (Kim et al., "torchgpipe: On-the-fly Pipeline Parallelism for Training Giant Models", 2020;
``torchgpipe.balance``) profiles each layer's time and splits the sequence with the "block partition of
sequences" algorithm of Bárány and Grinberg (arXiv 1308.2452): normalize the values to :math:`[0, 1]`, start
from equal-length blocks, and while the largest block exceeds the smallest by more than 1, move one element
toward the smallest block from its neighbour on the side of a largest block (:func:`block_partition`). Ties
are broken as torchgpipe breaks them (the last maximal block, the first minimal one), so the stage sizes are
torchgpipe's (``tests/partition/test_partition_heuristics.py`` compares them on random float costs); unlike
torchgpipe, the moves are capped, since its loop does not always end. The result is not optimal in general
(torchgpipe says so); it ignores device heterogeneity and links.

Choices: the layer times are each block's forward (plus backward, in training) time per micro-batch averaged
over the problem's devices (torchgpipe profiles on one device); stages run on devices ``0..S-1`` in order.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def block_partition(values: np.ndarray, parts: int, max_moves: int | None = None) -> np.ndarray:
    """Block sizes of Bárány and Grinberg's partition of ``values`` into ``parts`` contiguous blocks."""
    x = np.asarray(values, dtype=float)
    n = x.size
    parts = int(min(parts, n))
    # normalized to [0, 1] by the true minimum and range, as torchgpipe's blockpartition.solve (with
    # `min(initial=0)` all-positive values were not shifted, and the blocks came out different)
    lo = float(x.min()) if n else 0.0
    span = float(x.max()) - lo if n else 0.0
    y = [(v - lo) / span for v in x.tolist()] if span > 0 else [0.0] * n
    splits = [n // parts * (i + 1) for i in range(parts - 1)] + [n]

    def sizes() -> np.ndarray:      # block sums in the same order as torchgpipe (ties compare alike)
        starts = [0, *splits[:-1]]
        return np.array([sum(y[a:b]) for a, b in zip(starts, splits, strict=True)])

    budget = max_moves if max_moves is not None else 4 * n * parts + 16
    while budget > 0:
        b = sizes()
        p = int(np.flatnonzero(b == b.max())[-1])           # (1) a maximal block (torchgpipe: the last one)
        mx = float(b[p])
        while budget > 0:
            budget -= 1
            b = sizes()
            mn = b.min()
            if mx <= mn + 1:                                # (2) stop (M(P) as fixed in step 1, as torchgpipe)
                return _sizes(splits)
            q = int(np.flatnonzero(b == mn)[0])             # (3) a minimal block (torchgpipe: the first one)
            if p < q:
                h = q - 1
                splits[h] -= 1                              # last element of B_{q-1} moves to B_q
            else:
                h = q + 1
                splits[q] += 1                              # first element of B_{q+1} moves to B_q
            if p == h:
                break
    return _sizes(splits)


def _sizes(splits: list[int]) -> np.ndarray:
    """Block lengths; a block whose end moved before its start is empty (torchgpipe's slices give 0)."""
    return np.maximum(np.diff(np.concatenate([[0], splits])), 0)


@register("block-partition", problem=PipelinePartition, kind="heuristic", options={})
def solve_block_partition(problem: PipelinePartition, ctx: SolveContext) -> Result:
    """torchgpipe's balance_by_time: Bárány-Grinberg block partition of device-averaged layer times."""
    t0 = time.perf_counter()
    d = problem.data()
    times = (d["fwd"] + (d["bwd"] if problem.training else 0.0)).mean(axis=0)
    S = problem.n_devices if problem.order == "fixed" else min(problem.n_devices, problem.n_blocks)
    sizes = block_partition(times, S)
    plan = PipelinePlan.from_sizes(sizes) if (sizes > 0).all() else None
    return heuristic_result(problem, plan, "block-partition", t0,
                            message="" if plan is not None else "a block came out empty")


__all__ = ["block_partition", "solve_block_partition"]
