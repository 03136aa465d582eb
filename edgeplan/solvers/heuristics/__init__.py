"""Published heuristics and baselines, one module per method, named after it."""
