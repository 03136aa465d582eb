"""Problem families: frozen data plus ``objective``/``evaluate``/``check`` of any plan.

=================================  =====================================================================
family                             module
=================================  =====================================================================
:class:`MILP`                      :mod:`edgeplan.formulations.milp` (the generic form others reduce to)
``SplitInference``, ``Pipeline...`` :mod:`edgeplan.formulations.partition` (device/edge/cloud, pipelines)
``FLRound``, ``FLRoundEnergy``     :mod:`edgeplan.formulations.fl_round`, :mod:`~.fl_energy`
``SlideProvisioning``              :mod:`edgeplan.formulations.slide`
``CachePlacement``, ``CacheReplay`` :mod:`edgeplan.formulations.cache`, :mod:`~.cache_replay`
=================================  =====================================================================

The family classes are imported on first access, so ``import edgeplan`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgeplan.formulations.base import FEAS_TOL, INT_TOL, Problem, Violation
from edgeplan.formulations.milp import MILP, MILPMetrics

_LAZY = {
    "SplitInference": "partition", "SplitPlan": "partition", "PipelinePartition": "partition",
    "PipelinePlan": "partition",
    "FLRound": "fl_round", "FLSchedule": "fl_round", "FLRoundEnergy": "fl_energy", "FLEnergySchedule": "fl_energy",
    "SlideProvisioning": "slide", "SlidePlan": "slide",
    "CachePlacement": "cache", "CachePlan": "cache", "CacheReplay": "cache_replay",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"edgeplan.formulations.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgeplan.formulations' has no attribute {name!r}")


__all__ = ["FEAS_TOL", "INT_TOL", "MILP", "MILPMetrics", "Problem", "Violation", *_LAZY]
