"""Generic solver backends: each solves :class:`~edgeplan.formulations.milp.MILP` (or runs a family's convex or
MINLP model) and knows no family. They are the only modules that import a solver library, and only when a
method runs; :func:`edgeplan.registry.load` imports them (registering ``highs``, ``cp-sat``, ``scipy``,
``pyomo``) with the families' methods."""
