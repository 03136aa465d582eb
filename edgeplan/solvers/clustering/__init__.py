"""Methods for clustered federated learning (:mod:`edgeplan.formulations.clustering`)."""
