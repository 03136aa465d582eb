"""Validation on real torch models: the model zoo, executors and their registry.

Submodules that need torch import it themselves; the zoo's names below are loaded on first access, so
``import edgeplan.validation.registry`` stays free of torch.
"""

from __future__ import annotations

from typing import Any

_ZOO_NAMES = ("SIZES", "ZOO_MODELS", "ZooModel", "build_model")


def __getattr__(name: str) -> Any:
    if name in _ZOO_NAMES:
        from edgeplan.validation import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'edgeplan.validation' has no attribute {name!r}")


__all__ = ["SIZES", "ZOO_MODELS", "ZooModel", "build_model"]
