"""One measured run of a model profile: per-block and whole-model latency on a device, batch size and dtype."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import ProfileError
from edgeplan.profiles.devices import DTYPE_BYTES


@dataclass(frozen=True, slots=True, eq=False)
class Measurement:
    """Measured latencies of a profile's blocks on one (device, batch size, dtype).

    Attributes
    ----------
    device, batch_size, dtype
        The key: device name (e.g. ``"cpu"``, ``"cuda:0"``, a preset name), samples per run, dtype name.
    block_time_s
        (L,) median time of each block run on its own (seconds per batch).
    whole_time_s
        Median time of the whole model (seconds per batch).
    repeats
        Timed runs per median (after warm-up).
    block_time_iqr_s, whole_time_iqr_s
        Interquartile ranges (spread of the repeats), or ``None``.
    h2d_time_s
        (L,) host-to-accelerator copy time of each block's parameters (SLIDE's :math:`V_1`), or ``None``.
    method
        How the blocks were timed (``"export"``: each block's sub-graph alone; ``"hooks"``: in place).
    replicated_time_s
        (L,) part of ``block_time_s`` spent recomputing input-independent values (causal masks, position and
        rotary tables) that every block of a split model recomputes but a whole-model run computes once; or
        ``None``.
    constants_time_s
        Time to compute all input-independent values once, or ``None``.
    """

    device: str
    batch_size: int
    dtype: str
    block_time_s: np.ndarray
    whole_time_s: float
    repeats: int = 1
    block_time_iqr_s: np.ndarray | None = None
    whole_time_iqr_s: float | None = None
    h2d_time_s: np.ndarray | None = None
    method: str = ""
    replicated_time_s: np.ndarray | None = None
    constants_time_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device:
            raise ProfileError(f"`device` = {self.device!r}; expected a non-empty string")
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, int | np.integer) or bs < 1:
            raise ProfileError(f"`batch_size` = {self.batch_size!r}; expected a positive integer")
        object.__setattr__(self, "batch_size", int(self.batch_size))
        one_of("dtype", self.dtype, tuple(DTYPE_BYTES), error=ProfileError)
        t = as_array("block_time_s", self.block_time_s, shape=(None,), min_value=0.0, error=ProfileError)
        object.__setattr__(self, "block_time_s", t)
        as_scalar("whole_time_s", self.whole_time_s, min_value=0.0, error=ProfileError)
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int | np.integer) or self.repeats < 1:
            raise ProfileError(f"`repeats` = {self.repeats!r}; expected a positive integer")
        for f in ("block_time_iqr_s", "h2d_time_s", "replicated_time_s"):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, as_array(f, v, shape=t.shape, min_value=0.0, error=ProfileError))
        as_scalar("whole_time_iqr_s", self.whole_time_iqr_s, min_value=0.0, allow_none=True, error=ProfileError)
        as_scalar("constants_time_s", self.constants_time_s, min_value=0.0, allow_none=True, error=ProfileError)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.device, self.batch_size, self.dtype)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Measurement) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def additivity_error(self) -> float:
        """:math:`\\sum_v t_v / t_{\\rm whole} - 1`: how far block times are from adding up to the model's."""
        return float(self.block_time_s.sum() / self.whole_time_s - 1.0) if self.whole_time_s > 0 else float("nan")

    @property
    def net_additivity_error(self) -> float | None:
        r"""The additivity error with replicated recomputation counted once, as in the whole model:
        :math:`(\sum_v (t_v - r_v) + t_{\rm const}) / t_{\rm whole} - 1` (``None`` without those timings)."""
        if self.replicated_time_s is None or self.constants_time_s is None or self.whole_time_s <= 0:
            return None
        net = self.block_time_s.sum() - self.replicated_time_s.sum() + self.constants_time_s
        return float(net / self.whole_time_s - 1.0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "batch_size": self.batch_size, "dtype": self.dtype,
                               "block_time_s": self.block_time_s.tolist(), "whole_time_s": float(self.whole_time_s),
                               "repeats": int(self.repeats), "method": self.method}
        for f in ("block_time_iqr_s", "h2d_time_s", "replicated_time_s"):
            v = getattr(self, f)
            out[f] = None if v is None else v.tolist()
        out["whole_time_iqr_s"] = self.whole_time_iqr_s
        out["constants_time_s"] = self.constants_time_s
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        return cls(**dict(d))


__all__ = ["Measurement"]
