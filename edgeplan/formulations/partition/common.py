r"""What the partition formulations share: block times per device, links, and sparse-model assembly.

Block time on a device
----------------------
A block's time on a device, for one batch of :math:`b` samples in dtype :math:`d`, is taken from the model
profile's measurement keyed ``(device.name, b, d)`` when one exists (``source = "measured"``); otherwise it is
the roofline-style sum

.. math:: t_v = b \sum_{k} \frac{W_{v,k}}{F_k} + b\,\frac{m_v}{B_{\rm mem}} + o

over the op kinds :math:`k` of the block's forward FLOPs :math:`W_{v,k}`, with the device's effective FLOP/s
:math:`F_k` for that kind (calibrated, else efficiency times peak), its zero-FLOP memory traffic
:math:`m_v` over the device's memory bandwidth, and the device's fixed per-block overhead :math:`o`
(``source = "flops"``). A measurement at another batch size is not extrapolated. Backward times (training) are
:math:`W^b_v / W^f_v` times the forward time, so a measured forward time carries over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from edgeplan._checks import as_scalar
from edgeplan.errors import ProblemDataError, ProfileError
from edgeplan.profiles.devices import DTYPE_BYTES, DeviceProfile
from edgeplan.profiles.links import WiredLink, WirelessChannel
from edgeplan.profiles.model import ModelProfile

#: Relative slack used when comparing a stage time against a bottleneck value (rounding only).
TIME_RTOL = 1e-12


@dataclass(frozen=True, slots=True)
class BlockTimes:
    """Per-block times of a model on one device (seconds per batch) and where they come from.

    Attributes
    ----------
    forward_s, backward_s
        ``(L,)`` forward and backward time of each block for one batch.
    source
        ``"measured (...)"`` when the profile holds a measurement on this device, else how they were computed
        (FLOPs over the device's peak and memory traffic over its bandwidth).
    """

    forward_s: np.ndarray
    backward_s: np.ndarray
    source: str

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")


def block_times(model: ModelProfile, device: DeviceProfile, batch_size: int, dtype: str,
                *, use_measured: bool = True) -> BlockTimes:
    """Forward and backward time of every block of ``model`` on ``device`` (see the module docstring).

    Parameters
    ----------
    model, device
        The profile and the device.
    batch_size, dtype
        Samples per batch and the compute dtype (``"fp32"``, ``"fp16"`` ...).
    use_measured
        Take a measurement the profile holds for this device, batch and dtype when there is one.

    Returns
    -------
    BlockTimes
    """
    key = (device.name, int(batch_size), dtype)
    fwd = None
    if use_measured:
        for m in model.measurements:
            if m.key == key:
                fwd = np.asarray(m.block_time_s, dtype=float)
                source = f"measured ({device.name}, batch {batch_size}, {dtype})"
                break
    if fwd is None:
        fwd = np.zeros(model.n_blocks)
        for kind, w in model.kind_flops.items():
            fwd = fwd + batch_size * w / device.effective_flops_per_s(dtype, kind)
        bw = device.effective_bandwidth_bytes_per_s or device.memory_bandwidth_bytes_per_s
        fwd = fwd + batch_size * model.mem_bytes / bw + device.block_overhead_s
        source = f"flops ({device.name}, {dtype})"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(model.fwd_flops > 0, model.bwd_flops / model.fwd_flops, 0.0)
    bwd = fwd * ratio
    fwd.setflags(write=False)
    bwd.setflags(write=False)
    return BlockTimes(fwd, bwd, source)


def native_bits(dtype: str) -> int:
    """Bits per element of activations in ``dtype`` (the width of an unquantized transfer)."""
    return round(8 * DTYPE_BYTES[dtype])


def wireless_link(name: str, channel: WirelessChannel, *, bandwidth_hz: float, power_w: float,
                  gain: float | None = None, distance_m: float | None = None, latency_s: float = 0.0,
                  seed: int | None = None) -> WiredLink:
    r"""A fixed-rate link whose rate is the channel's power-based rate :math:`b\log_2(1 + p g/(N_0 b))`.

    Parameters
    ----------
    name
        The link's name.
    channel
        The wireless channel (path loss, shadowing, fading, noise density).
    bandwidth_hz, power_w
        Bandwidth :math:`b` and transmit power :math:`p`.
    gain, distance_m
        Either the linear gain :math:`g`, or a distance at which a gain is drawn from the channel (path loss,
        shadowing and fading, seeded by ``seed``).
    latency_s
        The link's latency.
    seed
        Seeds the drawn gain.

    Returns
    -------
    WiredLink
        A link at that fixed rate.
    """
    if (gain is None) == (distance_m is None):
        raise ProblemDataError("give exactly one of `gain` and `distance_m`; expected a channel gain or a distance")
    if gain is None:
        gain = float(np.asarray(channel.gain(distance_m, seed=seed)).reshape(-1)[0])
    as_scalar("gain", gain, min_value=0.0, strict_min=True)
    rate = float(channel.rate_bps(bandwidth_hz, power_w, gain))
    return WiredLink(name=name, rate_bps=rate, latency_s=latency_s)


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` when it is a whole number >= ``minimum`` (bools refused); else an error naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ProblemDataError(f"`{name}` = {value!r}; expected an integer >= {minimum}")
    return int(value)


def per_item(name: str, value: Any, size: int, *, default: float, allow_inf: bool = True) -> np.ndarray:
    """A (size,) float vector from ``None`` (the default), a scalar or a sequence; values >= 0."""
    from edgeplan._checks import as_array

    if value is None:
        value = default
    arr = np.broadcast_to(np.asarray(value, dtype=float), (size,)) if np.ndim(value) == 0 else value
    return as_array(name, arr, shape=(size,), min_value=0.0, allow_inf=allow_inf)


def named_profile(name: str, value: Any, kind: type) -> Any:
    """A profile given by preset name or file path (a ``str``) loaded and checked to be a ``kind``."""
    if not isinstance(value, str):
        return value
    from edgeplan.profiles.loading import load_profile

    try:
        prof = load_profile(value)
    except ProfileError as exc:
        raise ProblemDataError(f"`{name}` = {value!r}: {exc}") from exc
    if not isinstance(prof, kind):
        raise ProblemDataError(f"`{name}` = {value!r} is a {type(prof).__name__} preset; expected a {kind.__name__}")
    return prof


def check_model(model: Any) -> ModelProfile:
    """``model`` as a :class:`ModelProfile`: the profile itself, a zoo model's name (``"gpt2"``,
    ``"resnet18-small"``: the shipped profiles) or a profile ``.json`` path."""
    model = named_profile("model", model, ModelProfile)
    if not isinstance(model, ModelProfile):
        raise ProblemDataError(f"`model` is a {type(model).__name__}; expected a ModelProfile, a zoo model name "
                               "or a profile .json path")
    return model


def check_devices(name: str, devices: Any, *, minimum: int, maximum: int | None = None) -> tuple[DeviceProfile, ...]:
    """``devices`` as a tuple of :class:`DeviceProfile`; each may be given by preset name or ``.toml`` path."""
    if isinstance(devices, DeviceProfile | str) or not isinstance(devices, Sequence):
        raise ProblemDataError(f"`{name}` is a {type(devices).__name__}; expected a sequence of DeviceProfile")
    out = tuple(named_profile(f"{name}[{i}]", d, DeviceProfile) for i, d in enumerate(devices))
    bad = [i for i, d in enumerate(out) if not isinstance(d, DeviceProfile)]
    if bad:
        raise ProblemDataError(f"`{name}`[{bad[0]}] is a {type(out[bad[0]]).__name__}; expected a DeviceProfile "
                               "or a device preset name")
    if len(out) < minimum or (maximum is not None and len(out) > maximum):
        want = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ProblemDataError(f"`{name}` has {len(out)} devices; expected {want}")
    return out


# -- sparse assembly -----------------------------------------------------------------------------------------
class Columns:
    """Named column blocks of a MILP: ``add(name, shape, lower, upper, integer)`` returns index arrays."""

    def __init__(self) -> None:
        self.n = 0
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, name: str, shape: int | tuple[int, ...], lower: Any = 0.0, upper: Any = np.inf,
            integer: bool = False) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
        size = int(np.prod(shape)) if shape else 1
        idx = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), shape).reshape(-1))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), shape).reshape(-1))
        self.integer.append(np.full(size, integer, dtype=bool))
        if shape:
            self.names += [f"{name}[{','.join(map(str, ix))}]" for ix in np.ndindex(*shape)]
        else:
            self.names.append(name)
        return idx

    def expr_upper(self, cols: np.ndarray, coefs: np.ndarray, const: float = 0.0) -> float:
        """An upper bound on ``const + sum(coefs * x[cols])`` over the column boxes (``inf`` if unbounded)."""
        lo, hi, _ = self.bounds()
        c = np.asarray(coefs, dtype=float)
        idx = np.asarray(cols, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            terms = np.where(c > 0, c * hi[idx], np.where(c < 0, c * lo[idx], 0.0))
        return float(const + terms.sum())

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
            return np.concatenate(xs) if xs else np.zeros(0, dtype=dt)

        return cat(self.lower, float), cat(self.upper, float), cat(self.integer, bool)


class Rows:
    """Constraint blocks given as triplets; ``add`` takes ``(row-local index, column, value)`` arrays.

    ``add(n_rows, r, c, v, lower, upper)`` appends ``n_rows`` rows whose nonzeros are ``(r[i], c[i], v[i])``
    with ``r`` local to the block; everything is concatenated once into a ``coo_array`` by :meth:`matrix`.
    """

    def __init__(self) -> None:
        self.m = 0
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []

    def add(self, n_rows: int, r: Any, c: Any, v: Any, lower: Any = -np.inf, upper: Any = np.inf) -> None:
        if n_rows == 0:
            return
        r, c = np.asarray(r, dtype=np.int64).reshape(-1), np.asarray(c, dtype=np.int64).reshape(-1)
        v = np.broadcast_to(np.asarray(v, dtype=float), r.shape).reshape(-1)
        self.r.append(r + self.m)
        self.c.append(c)
        self.v.append(v)
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (n_rows,)).reshape(-1))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n_rows,)).reshape(-1))
        self.m += n_rows

    def matrix(self, n_cols: int) -> tuple[sp.coo_array, np.ndarray, np.ndarray]:
        if not self.r:
            return sp.coo_array((0, n_cols)), np.zeros(0), np.zeros(0)
        A = sp.coo_array((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                         shape=(self.m, n_cols))
        return A, np.concatenate(self.lower), np.concatenate(self.upper)


def rows_of(n: int, per_row: int) -> np.ndarray:
    """Row-local indices ``0,0,..,1,1,..`` for ``n`` rows with ``per_row`` nonzeros each."""
    return np.repeat(np.arange(n), per_row)


__all__ = ["TIME_RTOL", "BlockTimes", "Columns", "Rows", "block_times", "check_devices", "check_model", "named_profile",
           "native_bits", "per_item", "positive_int", "rows_of", "wireless_link"]
