r"""Device profiles: compute throughput, memory, clocks and the DVFS power model.

Compute model
-------------
A block of :math:`W` FLOPs in dtype :math:`d` run at clock :math:`f \le f_{\max}` takes

.. math::  t = \frac{c_d\,W}{\eta\, f}, \qquad c_d = \frac{f_{\max}}{F_d} \ \text{cycles per FLOP},

where :math:`F_d` is the datasheet peak FLOP/s in dtype :math:`d` and :math:`\eta\in(0,1]` the achieved
fraction of peak (``efficiency``); at :math:`f = f_{\max}`, :math:`t = W/(\eta F_d)`. A calibrated device
(:mod:`edgeplan.profiles.calibration`) replaces :math:`\eta F_d` by a measured FLOP/s per op kind.

Power model and its two conventions
-----------------------------------
Dynamic CMOS power is :math:`P = \kappa f^3` (switched capacitance :math:`\kappa` times :math:`V^2 f`, with
:math:`V \propto f`), so :math:`C` cycles at clock :math:`f` cost

.. math::  E = \kappa\, C f^2 \quad [\text{J}], \qquad t = C/f.

Papers write the coefficient two ways, which differ by a factor of 2:

* ``"kappa"``: :math:`E = \kappa C f^2`. DAGSA's author code (``alpha = 1e-27``) and SLIDE's
  :math:`\Psi` (power :math:`\Psi f^3`, energy :math:`\Psi \kappa_{\rm cyc} b W f^2 z^2`) use this one.
* ``"half_alpha"``: :math:`E = \tfrac{\alpha}{2} C f^2` (Tran et al., INFOCOM 2019; HFL-SNM as
  reconstructed), so :math:`\alpha = 2\kappa`.

:class:`PowerModel` stores one coefficient *with* its convention (a TOML file must name it) and converts
by method, so a paper's :math:`\alpha` is never mistaken for :math:`\kappa`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import ProfileError
from edgeplan.profiles import _toml

DEVICE_CLASSES = ("phone", "single-board", "jetson", "laptop", "edge-server", "cloud-gpu")
"""Device classes a :class:`DeviceProfile` may declare."""

DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")
"""Dtype keys of ``peak_flops_per_s`` (int8 and fp8 rates are operations per second)."""

DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp64": 8.0, "fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
)
"""Bytes per element of each dtype name used in profiles."""

COMPUTE_UNITS = ("cpu", "gpu", "npu")


class EnergyConvention(StrEnum):
    """How a switched-capacitance coefficient is written (see the module docstring)."""

    KAPPA = "kappa"
    """:math:`E = \\kappa C f^2`, :math:`P = \\kappa f^3` (DAGSA author code's alpha, SLIDE's Psi)."""
    HALF_ALPHA = "half_alpha"
    """:math:`E = (\\alpha/2) C f^2` (Tran et al. 2019, HFL-SNM): :math:`\\alpha = 2\\kappa`."""


_TO_KAPPA = {EnergyConvention.KAPPA: 1.0, EnergyConvention.HALF_ALPHA: 0.5}


@dataclass(frozen=True, slots=True)
class PowerModel:
    r"""DVFS power model :math:`P(f) = P_{\rm idle} + \kappa f^3`.

    Parameters
    ----------
    coefficient
        The switched-capacitance coefficient as written in ``convention`` (W/Hz^3, i.e. J per cycle per Hz^2).
    convention
        ``"kappa"`` (:math:`E = \kappa C f^2`) or ``"half_alpha"`` (:math:`E = (\alpha/2) C f^2`).
    idle_w
        Static power in watts, drawn whenever the device is on (not part of :meth:`energy_j`).
    """

    coefficient: float
    convention: EnergyConvention
    idle_w: float = 0.0

    def __post_init__(self) -> None:
        conv = one_of("convention", str(self.convention), [c.value for c in EnergyConvention], error=ProfileError)
        object.__setattr__(self, "convention", EnergyConvention(conv))
        as_scalar("coefficient", self.coefficient, min_value=0.0, error=ProfileError)
        as_scalar("idle_w", self.idle_w, min_value=0.0, error=ProfileError)

    @property
    def kappa(self) -> float:
        """The coefficient in the ``"kappa"`` convention: :math:`E = \\kappa C f^2`."""
        return float(self.coefficient) * _TO_KAPPA[self.convention]

    def coefficient_as(self, convention: EnergyConvention | str) -> float:
        """The coefficient written in ``convention`` (``half_alpha`` gives :math:`\\alpha = 2\\kappa`)."""
        conv = EnergyConvention(one_of("convention", str(convention), [c.value for c in EnergyConvention],
                                       error=ProfileError))
        return self.kappa / _TO_KAPPA[conv]

    def dynamic_power_w(self, freq_hz: Any) -> np.ndarray:
        """:math:`\\kappa f^3` in watts (vectorized over ``freq_hz``)."""
        return self.kappa * np.asarray(freq_hz, dtype=float) ** 3

    def energy_j(self, cycles: Any, freq_hz: Any) -> np.ndarray:
        """Dynamic energy :math:`\\kappa C f^2` of ``cycles`` at ``freq_hz`` (broadcast), in joules."""
        return self.kappa * np.asarray(cycles, dtype=float) * np.asarray(freq_hz, dtype=float) ** 2


def _frozen_map(name: str, value: Mapping[str, Any] | None, keys: tuple[str, ...] | None) -> Mapping[str, float]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ProfileError(f"`{name}` = {value!r}; expected a mapping of name to number")
    out: dict[str, float] = {}
    for k, v in value.items():
        if keys is not None:
            one_of(f"{name} key", k, keys, error=ProfileError)
        out[str(k)] = float(as_scalar(f"{name}[{k!r}]", v, min_value=0.0, strict_min=True, error=ProfileError))
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    r"""What a device can compute, hold and spend.

    Parameters
    ----------
    name
        Identifier (preset names are lower-case with dashes, e.g. ``"jetson-orin-nx-16gb"``).
    device_class
        One of :data:`DEVICE_CLASSES`.
    peak_flops_per_s
        Datasheet peak throughput per dtype (keys from :data:`DTYPES`), dense (no structured sparsity), in
        FLOP/s (operations/s for int8/fp8). A dtype that is absent is not supported by the compute unit.
    efficiency
        Achieved fraction :math:`\eta \in (0, 1]` of peak on DNN workloads (an assumption unless calibrated).
    memory_bytes
        Memory available to the compute unit, in bytes.
    memory_bandwidth_bytes_per_s
        Peak DRAM/HBM bandwidth, in bytes/s.
    clock_min_hz, clock_max_hz
        DVFS range of the compute unit whose peaks are listed, in hertz.
    power
        The :class:`PowerModel` (coefficient with its convention, idle power).
    compute_unit
        ``"cpu"``, ``"gpu"`` or ``"npu"``: which unit ``peak_flops_per_s`` and the clocks describe.
    max_tx_power_w
        Maximum radio transmit power in watts, or ``None`` for devices without a radio (servers).
    h2d_bandwidth_bytes_per_s
        Host-to-accelerator copy bandwidth in bytes/s (PCIe for discrete GPUs, a DRAM copy for unified
        memory), or ``None`` when the compute unit is the host CPU.
    kind_flops_per_s
        Calibrated effective FLOP/s per op kind (``"conv"``, ``"linear"``, ``"attention"`` ...) measured on
        this device; when present for a kind it replaces :math:`\eta F_d` for that kind.
    block_overhead_s
        Calibrated fixed time per block (a sub-graph call), in seconds.
    op_overhead_s
        Calibrated fixed time per ATen op (framework dispatch), in seconds.
    effective_bandwidth_bytes_per_s
        Calibrated bandwidth of memory-bound (zero-FLOP) ops in bytes/s, or ``None``.
    source
        Free text: where the numbers come from.
    """

    name: str
    device_class: str
    peak_flops_per_s: Mapping[str, float]
    efficiency: float
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    clock_min_hz: float
    clock_max_hz: float
    power: PowerModel
    compute_unit: str = "gpu"
    max_tx_power_w: float | None = None
    h2d_bandwidth_bytes_per_s: float | None = None
    kind_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    block_overhead_s: float = 0.0
    op_overhead_s: float = 0.0
    effective_bandwidth_bytes_per_s: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"`name` = {self.name!r}; expected a non-empty string")
        one_of("device_class", self.device_class, DEVICE_CLASSES, error=ProfileError)
        one_of("compute_unit", self.compute_unit, COMPUTE_UNITS, error=ProfileError)
        peaks = _frozen_map("peak_flops_per_s", self.peak_flops_per_s, DTYPES)
        if "fp32" not in peaks and "int8" not in peaks:
            raise ProfileError(f"`peak_flops_per_s` = {dict(peaks)!r}; expected at least an `fp32` or `int8` entry")
        object.__setattr__(self, "peak_flops_per_s", peaks)
        object.__setattr__(self, "kind_flops_per_s", _frozen_map("kind_flops_per_s", self.kind_flops_per_s, None))
        as_scalar("efficiency", self.efficiency, min_value=0.0, strict_min=True, max_value=1.0, error=ProfileError)
        as_scalar("memory_bytes", self.memory_bytes, min_value=0.0, strict_min=True, error=ProfileError)
        as_scalar("memory_bandwidth_bytes_per_s", self.memory_bandwidth_bytes_per_s, min_value=0.0,
                  strict_min=True, error=ProfileError)
        as_scalar("clock_min_hz", self.clock_min_hz, min_value=0.0, strict_min=True, error=ProfileError)
        as_scalar("clock_max_hz", self.clock_max_hz, min_value=0.0, strict_min=True, error=ProfileError)
        if self.clock_min_hz > self.clock_max_hz:
            raise ProfileError(f"`clock_min_hz` = {self.clock_min_hz}; expected a value <= `clock_max_hz` = "
                               f"{self.clock_max_hz}")
        if not isinstance(self.power, PowerModel):
            raise ProfileError(f"`power` = {self.power!r}; expected a PowerModel")
        as_scalar("max_tx_power_w", self.max_tx_power_w, min_value=0.0, allow_none=True, error=ProfileError)
        as_scalar("h2d_bandwidth_bytes_per_s", self.h2d_bandwidth_bytes_per_s, min_value=0.0, strict_min=True,
                  allow_none=True, error=ProfileError)
        as_scalar("block_overhead_s", self.block_overhead_s, min_value=0.0, error=ProfileError)
        as_scalar("op_overhead_s", self.op_overhead_s, min_value=0.0, error=ProfileError)
        as_scalar("effective_bandwidth_bytes_per_s", self.effective_bandwidth_bytes_per_s, min_value=0.0,
                  strict_min=True, allow_none=True, error=ProfileError)

    # -- throughput ---------------------------------------------------------------------------------------
    def peak(self, dtype: str = "fp32") -> float:
        """Datasheet peak FLOP/s in ``dtype``; raises :class:`ProfileError` when the dtype is unsupported."""
        if dtype not in self.peak_flops_per_s:
            raise ProfileError(f"`dtype` = {dtype!r} is not supported by device `{self.name}`; expected one of "
                               + ", ".join(map(repr, self.peak_flops_per_s)))
        return self.peak_flops_per_s[dtype]

    def effective_flops_per_s(self, dtype: str = "fp32", kind: str | None = None) -> float:
        """Achieved FLOP/s: the calibrated rate for ``kind`` when known, else :math:`\\eta F_d`."""
        if kind is not None and kind in self.kind_flops_per_s:
            return self.kind_flops_per_s[kind]
        return self.efficiency * self.peak(dtype)

    def cycles_per_flop(self, dtype: str = "fp32") -> float:
        """Clock cycles per FLOP at peak, :math:`c_d = f_{\\max}/F_d` (SLIDE's :math:`\\kappa_k`)."""
        return self.clock_max_hz / self.peak(dtype)

    def cycles(self, flops: Any, dtype: str = "fp32") -> np.ndarray:
        """Cycles spent on ``flops`` FLOPs at the achieved rate: :math:`c_d W / \\eta`."""
        return np.asarray(flops, dtype=float) * self.cycles_per_flop(dtype) / self.efficiency

    def _check_freq(self, freq_hz: Any) -> np.ndarray:
        if freq_hz is None:
            return np.asarray(self.clock_max_hz)
        f = as_array("freq_hz", freq_hz, min_value=0.0, strict_min=True, error=ProfileError)
        if (f > self.clock_max_hz * (1 + 1e-12)).any():
            raise ProfileError(f"`freq_hz` = {float(f.max())!r} exceeds `clock_max_hz` = {self.clock_max_hz} of "
                               f"device `{self.name}`; expected at most the maximum clock")
        return f

    def compute_time_s(self, flops: Any, dtype: str = "fp32", *, kind: str | None = None,
                       freq_hz: Any = None) -> np.ndarray:
        """Time of ``flops`` FLOPs: :math:`W/F_{\\rm eff}\\cdot f_{\\max}/f` (vectorized, broadcast)."""
        f = self._check_freq(freq_hz)
        w = as_array("flops", flops, min_value=0.0, error=ProfileError)
        return w / self.effective_flops_per_s(dtype, kind) * (self.clock_max_hz / f)

    def compute_energy_j(self, flops: Any, dtype: str = "fp32", *, freq_hz: Any = None) -> np.ndarray:
        """Dynamic energy of ``flops`` FLOPs at ``freq_hz``: :math:`\\kappa (c_d W/\\eta) f^2`."""
        f = self._check_freq(freq_hz)
        return self.power.energy_j(self.cycles(flops, dtype), f)

    def memory_time_s(self, nbytes: Any) -> np.ndarray:
        """Time to stream ``nbytes`` through memory (calibrated bandwidth if known, else the datasheet peak)."""
        bw = self.effective_bandwidth_bytes_per_s or self.memory_bandwidth_bytes_per_s
        return as_array("nbytes", nbytes, min_value=0.0, error=ProfileError) / bw

    def h2d_time_s(self, nbytes: Any) -> np.ndarray:
        """Host-to-accelerator copy time of ``nbytes`` (SLIDE's :math:`V_1`); zero when there is no copy."""
        b = as_array("nbytes", nbytes, min_value=0.0, error=ProfileError)
        if self.h2d_bandwidth_bytes_per_s is None:
            return np.zeros_like(b)
        return b / self.h2d_bandwidth_bytes_per_s

    def fits(self, nbytes: Any) -> np.ndarray:
        """Whether ``nbytes`` fit in the device memory (vectorized)."""
        return np.asarray(nbytes, dtype=float) <= self.memory_bytes

    # -- (de)serialization --------------------------------------------------------------------------------
    def with_calibration(self, kind_flops_per_s: Mapping[str, float], *, block_overhead_s: float = 0.0,
                         op_overhead_s: float = 0.0, effective_bandwidth_bytes_per_s: float | None = None,
                         name: str | None = None, source: str | None = None) -> DeviceProfile:
        """A copy carrying calibrated per-kind rates (see :mod:`edgeplan.profiles.calibration`)."""
        return replace(self, kind_flops_per_s=dict(kind_flops_per_s), block_overhead_s=float(block_overhead_s),
                       op_overhead_s=float(op_overhead_s),
                       effective_bandwidth_bytes_per_s=effective_bandwidth_bytes_per_s,
                       name=name or self.name, source=self.source if source is None else source)

    def to_dict(self) -> dict[str, Any]:
        """A TOML-ready mapping in the preset-file schema (read back by :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "kind": "device",
            "name": self.name,
            "class": self.device_class,
            "compute_unit": self.compute_unit,
            "efficiency": float(self.efficiency),
            "memory_bytes": float(self.memory_bytes),
            "memory_bandwidth_bytes_per_s": float(self.memory_bandwidth_bytes_per_s),
            "clock_min_hz": float(self.clock_min_hz),
            "clock_max_hz": float(self.clock_max_hz),
            "max_tx_power_w": None if self.max_tx_power_w is None else float(self.max_tx_power_w),
            "h2d_bandwidth_bytes_per_s": (None if self.h2d_bandwidth_bytes_per_s is None
                                          else float(self.h2d_bandwidth_bytes_per_s)),
            "source": self.source,
            "peak_flops_per_s": dict(self.peak_flops_per_s),
            "power": {"convention": self.power.convention.value, "coefficient": float(self.power.coefficient),
                      "idle_w": float(self.power.idle_w)},
        }
        if (self.kind_flops_per_s or self.block_overhead_s or self.op_overhead_s
                or self.effective_bandwidth_bytes_per_s):
            bw = self.effective_bandwidth_bytes_per_s
            out["calibration"] = {
                "block_overhead_s": float(self.block_overhead_s),
                "op_overhead_s": float(self.op_overhead_s),
                "effective_bandwidth_bytes_per_s": None if bw is None else float(bw),
                "kind_flops_per_s": dict(self.kind_flops_per_s),
            }
        return out

    def to_toml(self) -> str:
        """The profile as a TOML document that :func:`~edgeplan.profiles.load_profile` reads back."""
        return _toml.dumps(self.to_dict(), header=f"Device profile `{self.name}` (written by edgeplan).")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> DeviceProfile:
        """Build a profile from the preset-file schema, naming ``source``, the key, type and unit on errors.

        ``None`` values count as absent (so :meth:`to_dict` output reads back).
        """
        data = {k: v for k, v in data.items() if v is not None}
        if isinstance(data.get("calibration"), Mapping):
            data["calibration"] = {k: v for k, v in data["calibration"].items() if v is not None}
        top = {"kind", "name", "class", "compute_unit", "efficiency", "memory_bytes",
               "memory_bandwidth_bytes_per_s", "clock_min_hz", "clock_max_hz", "max_tx_power_w",
               "h2d_bandwidth_bytes_per_s", "source", "peak_flops_per_s", "power", "calibration"}
        _toml.reject_unknown(data, top, source=source)
        t = _toml.take
        peaks_t = t(data, "peak_flops_per_s", "table", "FLOP/s per dtype", source=source)
        _toml.reject_unknown(peaks_t, set(DTYPES), source=source, prefix="peak_flops_per_s.")
        peaks = {k: t(peaks_t, k, "number", "FLOP/s", source=source, prefix="peak_flops_per_s.",
                      min_value=0.0, strict_min=True) for k in peaks_t}
        power_t = t(data, "power", "table", "", source=source)
        _toml.reject_unknown(power_t, {"convention", "coefficient", "idle_w"}, source=source, prefix="power.")
        conv = t(power_t, "convention", "string", "", source=source, prefix="power.")
        if conv not in {c.value for c in EnergyConvention}:
            raise ProfileError(f"profile file `{source}`: key `power.convention` = {conv!r}; expected one of "
                               + ", ".join(repr(c.value) for c in EnergyConvention))
        power = PowerModel(
            coefficient=t(power_t, "coefficient", "number", "W/Hz^3 (J per cycle per Hz^2)", source=source,
                          prefix="power.", min_value=0.0),
            convention=EnergyConvention(conv),
            idle_w=t(power_t, "idle_w", "number", "watts", source=source, prefix="power.", default=0.0,
                     min_value=0.0),
        )
        cal = t(data, "calibration", "table", "", source=source, default={})
        _toml.reject_unknown(cal, {"block_overhead_s", "op_overhead_s", "effective_bandwidth_bytes_per_s",
                                   "kind_flops_per_s"},
                             source=source, prefix="calibration.")
        kind_t = t(cal, "kind_flops_per_s", "table", "FLOP/s per op kind", source=source,
                   prefix="calibration.", default={})
        kinds = {k: t(kind_t, k, "number", "FLOP/s", source=source, prefix="calibration.kind_flops_per_s.",
                      min_value=0.0, strict_min=True) for k in kind_t}
        kind = t(data, "kind", "string", "", source=source, default="device")
        if kind != "device":
            raise ProfileError(f"profile file `{source}`: key `kind` = {kind!r}; expected 'device'")
        cls_name = t(data, "class", "string", "", source=source)
        if cls_name not in DEVICE_CLASSES:
            raise ProfileError(f"profile file `{source}`: key `class` = {cls_name!r}; expected one of "
                               + ", ".join(map(repr, DEVICE_CLASSES)))
        unit = t(data, "compute_unit", "string", "", source=source, default="gpu")
        if unit not in COMPUTE_UNITS:
            raise ProfileError(f"profile file `{source}`: key `compute_unit` = {unit!r}; expected one of "
                               + ", ".join(map(repr, COMPUTE_UNITS)))
        return cls(
            name=t(data, "name", "string", "", source=source),
            device_class=cls_name,
            compute_unit=unit,
            peak_flops_per_s=peaks,
            efficiency=t(data, "efficiency", "number", "fraction of peak", source=source, min_value=0.0,
                         strict_min=True, max_value=1.0),
            memory_bytes=t(data, "memory_bytes", "number", "bytes", source=source, min_value=0.0, strict_min=True),
            memory_bandwidth_bytes_per_s=t(data, "memory_bandwidth_bytes_per_s", "number", "bytes/s",
                                           source=source, min_value=0.0, strict_min=True),
            clock_min_hz=t(data, "clock_min_hz", "number", "hertz", source=source, min_value=0.0,
                           strict_min=True),
            clock_max_hz=t(data, "clock_max_hz", "number", "hertz", source=source, min_value=0.0,
                           strict_min=True),
            power=power,
            max_tx_power_w=t(data, "max_tx_power_w", "number", "watts", source=source, default=None,
                             min_value=0.0),
            h2d_bandwidth_bytes_per_s=t(data, "h2d_bandwidth_bytes_per_s", "number", "bytes/s", source=source,
                                        default=None, min_value=0.0, strict_min=True),
            kind_flops_per_s=kinds,
            block_overhead_s=t(cal, "block_overhead_s", "number", "seconds", source=source,
                               prefix="calibration.", default=0.0, min_value=0.0),
            op_overhead_s=t(cal, "op_overhead_s", "number", "seconds", source=source,
                            prefix="calibration.", default=0.0, min_value=0.0),
            effective_bandwidth_bytes_per_s=t(cal, "effective_bandwidth_bytes_per_s", "number", "bytes/s",
                                              source=source, prefix="calibration.", default=None,
                                              min_value=0.0, strict_min=True),
            source=t(data, "source", "string", "", source=source, default=""),
        )


__all__ = [
    "COMPUTE_UNITS",
    "DEVICE_CLASSES",
    "DTYPES",
    "DTYPE_BYTES",
    "DeviceProfile",
    "EnergyConvention",
    "PowerModel",
]
