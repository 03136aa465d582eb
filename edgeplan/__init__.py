"""edgeplan: plan how AI models run and learn across edge networks.

State a resource-allocation problem, solve it exactly and with published heuristics, compare
them, validate plans on real PyTorch models, and export plans for runtimes.
"""

import logging as _logging

from edgeplan._version import __version__
from edgeplan.errors import (
    EdgeplanError,
    ExecutionError,
    PlanError,
    ProblemDataError,
    ProfileError,
    SolverError,
    SolverUnavailableError,
    UnsupportedProblemError,
)
from edgeplan.experiments.compare import compare, read_results
from edgeplan.formulations import MILP, Violation
from edgeplan.io.plans import export_plan, load_plan, save_plan
from edgeplan.io.scenarios import Scenario, load_scenario
from edgeplan.solvers import Limit, Result, Status, available_methods, register, solve

_logging.getLogger("edgeplan").addHandler(_logging.NullHandler())  # a library logs; the application shows


def __getattr__(name: str):  # families and `edgeplan.plot` load on first use: `import edgeplan` stays light
    import importlib

    from edgeplan.registry import public_name

    if name == "plot":
        return importlib.import_module("edgeplan.experiments.plot")
    try:
        return public_name(name)  # every family's public names (formulations/<family>/__init__.__all__)
    except AttributeError:
        pass
    if name in ("load_profile", "DeviceProfile", "ModelProfile"):
        return getattr(importlib.import_module("edgeplan.profiles"), name)
    if name == "profile_model":
        return importlib.import_module("edgeplan.profiles.profiler").profile_model
    raise AttributeError(f"module 'edgeplan' has no attribute {name!r}")

__all__ = [
    "MILP",
    "EdgeplanError",
    "ExecutionError",
    "Limit",
    "PlanError",
    "ProblemDataError",
    "ProfileError",
    "Result",
    "Scenario",
    "SolverError",
    "SolverUnavailableError",
    "Status",
    "UnsupportedProblemError",
    "Violation",
    "__version__",
    "available_methods",
    "compare",
    "export_plan",
    "load_plan",
    "load_scenario",
    "read_results",
    "register",
    "save_plan",
    "solve",
]
