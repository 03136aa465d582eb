"""Profiles: plain, validated data about devices, links, channels, mobility, data and models.

Everything here is numpy-only; :mod:`edgeplan.profiles.profiler` (torch) is imported on first use of
:func:`profile_model`, so ``import edgeplan.profiles`` stays light.

Quick start::

    from edgeplan.profiles import load_profile, profile_model, min_bandwidth_power_hz, channel_gain
    from edgeplan.validation import build_model

    nx = load_profile("jetson-orin-nx-16gb")             # DeviceProfile (TOML preset with sources)
    nx.compute_time_s(1e9, "fp16", freq_hz=612e6)        # DVFS compute model
    nx.power.coefficient_as("half_alpha")                # alpha = 2 kappa for E = (alpha/2) C f^2

    g = channel_gain([50.0, 200.0], "uma", carrier_hz=3.5e9, seed=0)   # TR 38.901 + shadowing + Rayleigh
    b = min_bandwidth_power_hz(8e6, 0.5, 0.2, g, 4e-21)  # Hz to send 1 MB in 0.5 s at 0.2 W (inf: unreachable)

    z = build_model("resnet18")                          # seeded random weights, no download
    prof = profile_model(z.module, z.example_inputs)     # block DAG, FLOPs, bytes, timings
    prof.to_chain().cut_bytes_after()                    # bytes crossing each split point
    prof.save("resnet18.json")                           # load_profile("resnet18.json") reads it back
"""

from __future__ import annotations

from typing import Any

from edgeplan.profiles.calibration import (
    CalibrationResult,
    calibrate_machine,
    fit_device,
    host_device,
    predict_block_times_s,
)
from edgeplan.profiles.data import (
    DataOwnership,
    dirichlet_label_counts,
    dirichlet_split,
    label_counts,
    label_skew,
    sample_counts,
    shard_split,
    social_network_data,
)
from edgeplan.profiles.devices import (
    DEVICE_CLASSES,
    DTYPE_BYTES,
    DTYPES,
    DeviceProfile,
    EnergyConvention,
    PowerModel,
)
from edgeplan.profiles.links import (
    WiredLink,
    WirelessChannel,
    bisect_increasing,
    channel_gain,
    min_bandwidth_power_hz,
    min_bandwidth_psd_hz,
    min_power_w,
    noise_psd_w_per_hz,
    path_loss_3gpp_db,
    path_loss_macro_db,
    rate_power_bps,
    rate_power_limit_bps,
    rate_psd_bps,
    spectral_efficiency,
)
from edgeplan.profiles.loading import list_presets, load_device, load_profile
from edgeplan.profiles.mobility import (
    Area,
    Trajectory,
    cell_exit_time_s,
    coverage_window_s,
    gauss_markov,
    nearest_bs,
    quadrant_layout,
    random_direction,
    random_waypoint,
)
from edgeplan.profiles.model import OP_KINDS, Measurement, ModelProfile


def profile_model(*args: Any, **kwargs: Any) -> ModelProfile:
    """Profile a torch module into a :class:`ModelProfile` (see :func:`edgeplan.profiles.profiler.profile_model`)."""
    from edgeplan.profiles.profiler import profile_model as _profile_model

    return _profile_model(*args, **kwargs)


__all__ = [
    "DEVICE_CLASSES",
    "DTYPES",
    "DTYPE_BYTES",
    "OP_KINDS",
    "Area",
    "CalibrationResult",
    "DataOwnership",
    "DeviceProfile",
    "EnergyConvention",
    "Measurement",
    "ModelProfile",
    "PowerModel",
    "Trajectory",
    "WiredLink",
    "WirelessChannel",
    "bisect_increasing",
    "calibrate_machine",
    "cell_exit_time_s",
    "channel_gain",
    "coverage_window_s",
    "dirichlet_label_counts",
    "dirichlet_split",
    "fit_device",
    "gauss_markov",
    "host_device",
    "label_counts",
    "label_skew",
    "list_presets",
    "load_device",
    "load_profile",
    "min_bandwidth_power_hz",
    "min_bandwidth_psd_hz",
    "min_power_w",
    "nearest_bs",
    "noise_psd_w_per_hz",
    "path_loss_3gpp_db",
    "path_loss_macro_db",
    "predict_block_times_s",
    "profile_model",
    "quadrant_layout",
    "random_direction",
    "random_waypoint",
    "rate_power_bps",
    "rate_power_limit_bps",
    "rate_psd_bps",
    "sample_counts",
    "shard_split",
    "social_network_data",
    "spectral_efficiency",
]
