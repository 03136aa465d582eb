"""CoCa's plan (per client: cached classes and active cache layers) and its metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import PlanError


@dataclass(frozen=True, slots=True)
class CachePlan:
    """Per client: the cached classes and the active cache layers (both stored as sorted tuples).

    ``CachePlan(classes=((3, 0), (1,)), layers=((2, 5), ()))``: client 0 caches classes 0 and 3 and
    looks them up at layers 2 and 5; client 1 caches class 1 at no layer.

    Attributes
    ----------
    classes
        Per client, the classes whose entries it caches.
    layers
        Per client, the layers at which it looks them up.
    """

    classes: tuple[tuple[int, ...], ...]
    layers: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        for label in ("classes", "layers"):
            raw = getattr(self, label)
            if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
                raise PlanError(f"`{label}` = {raw!r}; expected one sequence of integers per client")
            rows = []
            for i, row in enumerate(raw):
                try:
                    items = list(row)
                    vals = tuple(sorted(int(v) for v in items))
                    ok = all(not isinstance(v, bool | str) and v == int(v) for v in items)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise PlanError(f"`{label}`[{i}] = {row!r}; expected a sequence of integers")
                if len(set(vals)) != len(vals):
                    raise PlanError(f"`{label}`[{i}] = {row!r} has duplicates; expected distinct indices")
                rows.append(vals)
            object.__setattr__(self, label, tuple(rows))
        if len(self.classes) != len(self.layers):
            raise PlanError(f"`classes` has {len(self.classes)} clients but `layers` has {len(self.layers)}; "
                            "expected one entry per client in both")

    @property
    def n_clients(self) -> int:
        return len(self.classes)

    @property
    def class_counts(self) -> np.ndarray:
        """:math:`k_i` per client."""
        return np.array([len(c) for c in self.classes], dtype=int)

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {"classes": [list(c) for c in self.classes], "layers": [list(a) for a in self.layers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CachePlan:
        if not isinstance(data, Mapping) or set(data) != {"classes", "layers"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with keys 'classes' and 'layers'")
        return cls(classes=data["classes"], layers=data["layers"])


@dataclass(frozen=True, slots=True)
class CacheMetrics:
    """``evaluate(plan)``: per-client expected latency (s), accuracy, hit ratio, entries, memory (bytes).

    Attributes
    ----------
    objective
        The request-weighted expected latency over the clients.
    latency_s, full_latency_s
        Each client's expected latency with the cache, and without it (the full model).
    accuracy, hit_ratio
        Each client's expected accuracy and share of requests answered by the cache.
    entries, memory_bytes, n_layers
        Each client's cache entries, their memory, and the active cache layers.
    """

    objective: float
    latency_s: np.ndarray
    accuracy: np.ndarray
    hit_ratio: np.ndarray
    entries: np.ndarray
    memory_bytes: np.ndarray
    n_layers: np.ndarray
    full_latency_s: np.ndarray

    @property
    def latency_reduction(self) -> np.ndarray:
        """:math:`1 - \\mathbb E[T_i] / T^{full}_i` per client (negative: slower than no cache)."""
        return 1.0 - self.latency_s / self.full_latency_s


# -- the shared system data --------------------------------------------------------------------------


__all__ = ["CacheMetrics", "CachePlan"]
