"""Validation on real torch models: the model zoo (executors and reports build on it).

Importing this package imports torch; ``edgeplan.validation.zoo`` builds models from ``transformers`` configs.
"""

from __future__ import annotations

from edgeplan.validation.zoo import SIZES, ZOO_MODELS, ZooModel, build_model

__all__ = ["SIZES", "ZOO_MODELS", "ZooModel", "build_model"]
