r"""Neurosurgeon: pick the best layer-wise partition point of a DNN between a mobile device and the cloud.

Kang, Hauswald, Gao, Rovinski, Mudge, Mars, Tang, "Neurosurgeon: Collaborative Intelligence Between the Cloud
and Mobile Edge", ASPLOS 2017. Neurosurgeon predicts each layer's latency (or energy) on the mobile device and
in the cloud, and for every partition point :math:`k` (layers :math:`1..k` on the device, the rest in the
cloud, the output of layer :math:`k` uploaded) evaluates

.. math:: T(k) = \sum_{i \le k} t^{\rm mobile}_i + \frac{D_k}{B} + \sum_{i > k} t^{\rm cloud}_i

(or the mobile energy), then runs the argmin. Here the layers are the profile's blocks in topological order,
so on a DAG a partition point is a prefix cut and :math:`D_k` counts every tensor crossing it (Neurosurgeon
treats networks as chains of layers). Choices where the paper is silent or our setting is wider:

* with three tiers every pair of points :math:`k_1 \le k_2` is evaluated (device | edge | cloud);
* transfers are at native width (Neurosurgeon does not quantize), and the objective is the problem's own
  (latency or energy as in the paper; the period for ``minimize="throughput"``);
* candidates that break a memory or latency cap are skipped (Neurosurgeon has none); if none is left the
  result is ``no_solution``.

On a chain without widths below native this is exact (it enumerates every placement); on a DAG or with
quantized transfers it is a heuristic.
"""

from __future__ import annotations

import time

from edgeplan.formulations.partition.split import SplitInference
from edgeplan.solvers.partition.split_enum import enumerate_chain
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("neurosurgeon", problem=SplitInference, kind="heuristic", options={})
def solve_neurosurgeon(problem: SplitInference, ctx: SolveContext) -> Result:
    """Neurosurgeon (ASPLOS 2017): best prefix partition point(s) in topological order, native transfers."""
    t0 = time.perf_counter()
    plan, _, count, complete = enumerate_chain(problem, ctx.deadline, prefixes=True)
    msg = f"best of {count} partition points" + ("" if complete else " (stopped at the time limit)")
    if plan is None:
        return heuristic_result(problem, None, "neurosurgeon", t0,
                                message=f"none of the {count} partition points meets the constraints")
    return heuristic_result(problem, plan, "neurosurgeon", t0, message=msg, candidates=count)


__all__ = ["solve_neurosurgeon"]
