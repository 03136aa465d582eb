"""Methods for FL rounds, one module per method: exact (``fl-bisect``, ``fl-rb-milp``, ``fl-cpsat``, ``fl-energy``,
``fl-energy-cvxpy``) and the papers' heuristics (``dagsa``, ``do-snm``) and baselines."""
