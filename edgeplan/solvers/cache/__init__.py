"""Methods for CoCa cache placement, one module per method: exact (``cache-dp``, ``cache-replay``), CoCa's
``aca`` and baselines."""
