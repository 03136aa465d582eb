r"""Calibrate a :class:`~edgeplan.profiles.devices.DeviceProfile` from measured block latencies.

Latency model of a block :math:`v` run with batch :math:`B` on the device:

.. math::  \hat t_v = \sum_{k} \frac{B\,W_{v,k}}{F_k} + \frac{B\,M_v}{\beta} + c_b + c_o\,n_v,

with :math:`W_{v,k}` the block's forward FLOPs per sample of op kind :math:`k` (conv, linear, matmul,
attention ...), :math:`M_v` the bytes per sample moved by its zero-FLOP ops, :math:`n_v` its number of ATen
ops, :math:`F_k` the effective FLOP/s of kind :math:`k`, :math:`\beta` the effective memory bandwidth,
:math:`c_b` a fixed per-block and :math:`c_o` a per-op (dispatch) overhead.
The model is linear in :math:`\theta = (1/F_k,\ 1/\beta,\ c_b,\ c_o) \ge 0`, so :func:`fit_device` solves the
relative-error least squares :math:`\min_{\theta\ge0} \sum_v ((\hat t_v - t_v)/t_v)^2` exactly with
non-negative least squares (:func:`scipy.optimize.nnls`). Kinds whose coefficient is 0 (never the
bottleneck in the data) keep the device's default rate.

:func:`calibrate_machine` measures this machine on the probe models of
:func:`edgeplan.profiles.profiler.calibration_probes` and fits a profile, so plans made with it can be checked
by measurement on the same machine.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edgeplan.errors import ProfileError
from edgeplan.profiles.devices import DeviceProfile, EnergyConvention, PowerModel
from edgeplan.profiles.model import ModelProfile


def predict_block_times_s(device: DeviceProfile, profile: ModelProfile, *, batch_size: int = 1,
                          dtype: str | None = None) -> np.ndarray:
    """(L,) predicted time per block on ``device`` for a batch of ``batch_size`` (the model above).

    Per-kind rates come from the calibration when present, else :math:`\\eta F_d`; the memory term uses the
    calibrated bandwidth (or the datasheet's); overheads are ``block_overhead_s`` and ``op_overhead_s`` per op.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProfileError(f"`batch_size` = {batch_size!r}; expected a positive integer")
    d = dtype or profile.act_dtype
    t = np.zeros(profile.n_blocks)
    for kind, flops in profile.kind_flops.items():
        if flops.any():
            t += batch_size * flops / device.effective_flops_per_s(d, kind)
    t += device.memory_time_s(batch_size * profile.mem_bytes)
    return t + device.block_overhead_s + device.op_overhead_s * profile.num_ops


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """A fitted device profile and how well it explains the data.

    Attributes
    ----------
    device
        The calibrated :class:`DeviceProfile`.
    kinds
        Op kinds that were fitted (kinds with a zero coefficient are absent from ``device.kind_flops_per_s``).
    predicted_s, measured_s
        Block times on the fitting data, predicted and measured (seconds per batch).
    """

    device: DeviceProfile
    kinds: tuple[str, ...]
    predicted_s: np.ndarray
    measured_s: np.ndarray

    @property
    def relative_errors(self) -> np.ndarray:
        return (self.predicted_s - self.measured_s) / self.measured_s

    @property
    def median_abs_relative_error(self) -> float:
        return float(np.median(np.abs(self.relative_errors)))

    @property
    def total_relative_error(self) -> float:
        """Error of the summed time of all blocks (what a latency objective sees)."""
        return float(self.predicted_s.sum() / self.measured_s.sum() - 1.0)


def _machine_memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8.0 * 2**30


def _machine_clock_hz() -> float:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            mhz = [float(line.split(":")[1]) for line in fh if line.lower().startswith("cpu mhz")]
        if mhz:
            return max(mhz) * 1e6
    except OSError:  # pragma: no cover - non-Linux
        pass
    return 2.0e9


def host_device(name: str | None = None, *, peak_fp32: float = 1e11, device_class: str = "laptop") -> DeviceProfile:
    """A placeholder profile of this host (memory and clock read from the OS; throughput to be calibrated)."""
    clock = _machine_clock_hz()
    return DeviceProfile(
        name=name or f"host-{platform.node() or 'cpu'}", device_class=device_class, compute_unit="cpu",
        peak_flops_per_s={"fp32": peak_fp32}, efficiency=1.0, memory_bytes=_machine_memory_bytes(),
        memory_bandwidth_bytes_per_s=10e9, clock_min_hz=clock, clock_max_hz=clock,
        power=PowerModel(0.0, EnergyConvention.KAPPA),
        source=f"host {platform.platform()}, {os.cpu_count()} logical CPUs; power model unknown (0)")


def fit_device(profiles: Sequence[ModelProfile], device: str, *, batch_size: int | None = None,
               dtype: str | None = None, base: DeviceProfile | None = None, name: str | None = None,
               fit_overhead: bool = True, fit_bandwidth: bool = True) -> CalibrationResult:
    """Fit per-kind FLOP/s, bandwidth and per-block/per-op overheads to the measurements keyed by ``device``.

    Parameters
    ----------
    profiles
        Model profiles holding measurements for ``device`` (and ``batch_size``/``dtype`` when given).
    device
        The measurement key (e.g. ``"cpu"``).
    base
        The profile to calibrate (default: :func:`host_device`); its datasheet fields are kept.
    name
        Name of the calibrated profile (default: ``base.name``).
    """
    rows, times, kinds = [], [], sorted({k for p in profiles for k, v in p.kind_flops.items() if v.any()})
    for p in profiles:
        ms = [m for m in p.measurements if m.device == device and (batch_size is None or m.batch_size == batch_size)
              and (dtype is None or m.dtype == dtype)]
        for m in ms:
            feats = [m.batch_size * p.kind_flops.get(k, np.zeros(p.n_blocks)) for k in kinds]
            feats.append(m.batch_size * p.mem_bytes)
            feats.append(np.ones(p.n_blocks))
            feats.append(p.num_ops)
            rows.append(np.stack(feats, axis=1))
            times.append(m.block_time_s)
    if not rows:
        raise ProfileError(f"`profiles` hold no measurement for device {device!r}; expected profiles timed on it")
    x = np.concatenate(rows)
    y = np.concatenate(times)
    keep = y > 0
    x, y = x[keep], y[keep]
    cols = np.ones(x.shape[1], dtype=bool)
    cols[-3] = fit_bandwidth and bool(x[:, -3].any())
    cols[-2] = fit_overhead
    cols[-1] = fit_overhead and bool(x[:, -1].any())
    from scipy.optimize import nnls  # imported here: scipy.optimize is slow to import

    a = x[:, cols] / y[:, None]
    theta_sub, _ = nnls(a, np.ones(len(y)))
    theta = np.zeros(x.shape[1])
    theta[cols] = theta_sub
    fitted = {k: 1.0 / theta[i] for i, k in enumerate(kinds) if theta[i] > 0}
    bw = float(1.0 / theta[-3]) if theta[-3] > 0 else None
    dev = (base or host_device()).with_calibration(
        fitted, block_overhead_s=float(theta[-2]), op_overhead_s=float(theta[-1]), effective_bandwidth_bytes_per_s=bw,
        name=name,
        source=((base.source + "; ") if base is not None and base.source else "")
        + f"calibrated on {len(y)} block measurements of {len(profiles)} profiles ({device})")
    if base is None and fitted:
        dev = replace(dev, peak_flops_per_s={"fp32": max(fitted.values())})
    predicted = x @ theta
    return CalibrationResult(device=dev, kinds=tuple(fitted), predicted_s=predicted, measured_s=y)


def calibrate_machine(*, name: str | None = None, repeats: int = 5, scale: str = "small",
                      device: str = "cpu", progress: bool | None = None, **profile_kwargs: Any) -> CalibrationResult:
    """Profile the probe models on this machine and fit a device profile (imports torch).

    ``scale`` (``"tiny"`` or ``"small"``) sizes the probes; extra keyword arguments go to ``profile_model``.
    """
    from edgeplan.profiles.profiler import calibration_probes, profile_model

    profiles = [profile_model(module, inputs, name=probe, device=device, repeats=repeats, progress=progress,
                              backward=False, **profile_kwargs)
                for probe, (module, inputs) in calibration_probes(scale).items()]
    return fit_device(profiles, device=profiles[0].measurements[0].device, name=name)


__all__ = ["CalibrationResult", "calibrate_machine", "fit_device", "host_device", "predict_block_times_s"]
