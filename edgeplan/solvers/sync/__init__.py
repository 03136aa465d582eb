"""Methods for synchronisation schedules, one module per method: exact (``kv-sync-dp``, ``fragment-dp`` and
the MILP backends), FedAttn's ``fedattn-uniform`` / ``fedattn-deep``, CoCoDC's ``cocodc`` and baselines."""
