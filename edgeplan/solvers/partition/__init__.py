"""Methods for model partitioning, one module per method: exact (``split-enum``, ``dads``, ``pipeline-dp``)
and the papers' heuristics (``neurosurgeon``, ``coach``, ``block-partition``, ``param-balanced``) and baselines."""
