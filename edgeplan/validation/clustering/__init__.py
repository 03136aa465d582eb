"""Clustered split federated learning for real: bottom and top models, clusters executed as planned
(:mod:`.splitfl`)."""
