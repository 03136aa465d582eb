"""Profiles: plain, validated data about devices, links, channels, mobility, data and models.

Everything here is numpy-only; :mod:`edgeplan.profiles.profiler` (torch) is imported on first use of
:func:`profile_model`, so ``import edgeplan.profiles`` stays light.
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
