"""Problem families: frozen data plus ``objective``/``evaluate``/``check`` of any plan."""

from edgeplan.formulations.base import FEAS_TOL, INT_TOL, Problem, Violation
from edgeplan.formulations.milp import MILP, MILPMetrics

__all__ = ["FEAS_TOL", "INT_TOL", "MILP", "MILPMetrics", "Problem", "Violation"]
