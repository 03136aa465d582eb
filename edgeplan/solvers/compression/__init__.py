"""Methods for Caesar's compression ratios and batch sizes (:mod:`edgeplan.formulations.compression`)."""
