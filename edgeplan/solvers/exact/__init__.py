"""Structure-exploiting exact algorithms (DP, min-cut, bisection, ...), one module per family."""
from edgeplan.solvers.exact import cache as _cache  # noqa: F401  (registers "cache-dp", "cache-replay")
from edgeplan.solvers.exact import fl_bisect as _fl_bisect  # noqa: F401  (registers "fl-bisect")
from edgeplan.solvers.exact import fl_rb as _fl_rb  # noqa: F401  (registers "fl-rb-milp", "fl-cpsat")
from edgeplan.solvers.exact import slide as _slide  # noqa: F401  (registers "slide")
from edgeplan.solvers.exact import slide_cvxpy as _slide_cvxpy  # noqa: F401  (registers "slide-cvxpy")
from edgeplan.solvers.exact import slide_scip as _slide_scip  # noqa: F401  (registers "slide-scip")
