"""Structure-exploiting exact algorithms (DP, min-cut, bisection, ...), one module per family."""
from edgeplan.solvers.exact import slide as _slide  # noqa: F401  (registers "slide")
