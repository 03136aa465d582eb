"""Which validator executes a plan of a given problem type on real torch models.

Families list theirs in :data:`VALIDATORS` as ``problem type name -> [(label, "module:function")]``;
a validator is ``f(problem, plan, *, device="cpu") -> report`` whose ``str()`` is a readable summary.
Modules are imported only when a plan of that type is validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

VALIDATORS: dict[str, list[tuple[str, str]]] = {
    "SplitInference": [("split execution over emulated links", "edgeplan.validation.partition:registered_split")],
    "PipelinePartition": [("pipeline processes over gloo", "edgeplan.validation.partition:registered_pipeline")],
    "FLRound": [("FL round: local epochs of the FMNIST CNN and paced state_dict uploads",
                 "edgeplan.validation.fl:registered_fl_round")],
    "FLRoundEnergy": [("FL round at the planned clocks and powers: local epochs and paced uploads",
                       "edgeplan.validation.fl:registered_fl_round")],
}


def validators_for(problem: Any) -> list[tuple[str, Callable[..., Any]]]:
    """``(label, function)`` pairs that can execute plans of ``problem``'s type."""
    out = []
    for label, target in VALIDATORS.get(type(problem).__name__, []):
        module, _, func = target.partition(":")
        out.append((label, getattr(importlib.import_module(module), func)))
    return out


__all__ = ["VALIDATORS", "validators_for"]
