"""Small shared helpers of the profiles package (random generators, broadcasting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan.errors import ProfileError

Seed = int | np.random.Generator | np.random.SeedSequence | None
"""A seed argument: an int, a SeedSequence, an existing ``Generator`` (its stream continues) or ``None``."""


def rng_from(seed: Seed) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``; a ``Generator`` is returned as is (its stream continues)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, int | np.integer | np.random.SeedSequence):
        raise ProfileError(f"`seed` = {seed!r}; expected an int, a numpy Generator, a SeedSequence or None")
    return np.random.default_rng(seed)


def floats(name: str, value: Any, *, min_value: float | None = None, strict_min: bool = False,
           allow_inf: bool = False) -> np.ndarray:
    """``value`` as a float array (any shape), NaN-free, optionally bounded below; raises ProfileError."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"`{name}` = {value!r} is not numeric; expected real numbers") from exc
    if np.isnan(arr).any():
        raise ProfileError(f"`{name}` contains NaN; expected real numbers")
    if not allow_inf and np.isinf(arr).any():
        raise ProfileError(f"`{name}` contains infinite values; expected finite numbers")
    if min_value is not None:
        bad = arr <= min_value if strict_min else arr < min_value
        if bad.any():
            op = ">" if strict_min else ">="
            raise ProfileError(f"`{name}` has value {float(arr[bad].ravel()[0])!r}; expected values {op} {min_value}")
    return arr
