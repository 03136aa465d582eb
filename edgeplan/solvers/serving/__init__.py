"""Methods for speculative-serving steps, one module per method: exact (every MILP backend through the step's
MILP), CoSine's ``cosine`` policy and the baselines ``autoregressive``, ``single-drafter``, ``random-routing``
and ``fcfs-fixed``."""
