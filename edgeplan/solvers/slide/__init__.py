"""Methods for SLIDE, one module per method: exact (``slide``, ``slide-cvxpy``, ``slide-scip``) and the paper's
baselines (``eba``, ``gbmp``, ``eecra``, ``dai``)."""
