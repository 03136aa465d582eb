r"""The stages of a partition plan, and where ``torch.distributed.pipelining`` would cut the model for them.

Pure data (no torch): the ``split-spec`` and ``onnx`` exports and the pipelining runtime read the same stages.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np

from edgeplan.formulations.partition.split import SplitPlan

#: A block name that is a module path (``transformer.h.1``), where ``pipeline(..., split_spec=...)`` can cut.
MODULE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def plan_stages(problem: Any, plan: Any) -> list[dict[str, Any]]:
    """The non-empty stages of a split or pipeline plan: tier or device, block indices and block names."""
    names = problem.model.block_names
    out = []
    if isinstance(plan, SplitPlan):
        tau, _ = problem._parts(plan)
        for t in range(problem.n_tiers):
            idx = np.flatnonzero(tau == t)
            if idx.size:
                out.append({"tier": t, "device": problem.tiers[t].name, "blocks": idx.tolist(),
                            "block_names": [names[i] for i in idx]})
    else:
        b, dev = problem._parts(plan)
        for s in range(dev.size):
            idx = np.arange(b[s], b[s + 1])
            out.append({"stage": s, "device": int(dev[s]), "device_name": problem.devices[dev[s]].name,
                        "blocks": idx.tolist(), "block_names": [names[i] for i in idx]})
    return out


def pipelining_points(problem: Any, plan: Any) -> dict[str, Any] | None:
    """The split points of ``pipeline(module, mb_args, split_spec=...)`` for a plan whose stages are contiguous in
    block order: ``{"split_spec": {module path: "BEGINNING"}, "exact": bool, "n_stages": int}``, else ``None``.

    A stage that begins with a block that is not a module (profiler glue) is moved to the next module boundary
    and ``exact`` is false.
    """
    stages = plan_stages(problem, plan)
    names = problem.model.block_names
    contiguous = all(np.array_equal(s["blocks"], np.arange(s["blocks"][0], s["blocks"][-1] + 1)) for s in stages)
    if not (contiguous and all(a["blocks"][-1] + 1 == b["blocks"][0] for a, b in itertools.pairwise(stages))):
        return None
    points, exact = {}, True
    for s in stages[1:]:
        first = s["blocks"][0]
        j = next((k for k in range(first, problem.n_blocks) if MODULE_PATH.match(names[k])), None)
        if j is None:
            exact = False
            continue
        exact &= j == first
        points[names[j]] = "BEGINNING"
    return {"split_spec": points, "exact": exact, "n_stages": len(points) + 1}


__all__ = ["MODULE_PATH", "pipelining_points", "plan_stages"]
