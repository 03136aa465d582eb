"""Generic solver backends: each solves :class:`~edgeplan.formulations.milp.MILP` (or a convex
model) and knows no family. Importing this package registers them; no solver library is
imported until a method runs."""

from edgeplan.solvers.backends import cpsat, highs, pyomo, scipy  # noqa: F401 (registration)
