"""Calibration: the NNLS fit recovers known rates; the machine calibration runs end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeplan.errors import ProfileError
from edgeplan.profiles import Measurement, ModelProfile, load_profile
from edgeplan.profiles.calibration import (
    calibrate_machine,
    fit_device,
    host_device,
    predict_block_times_s,
)

TRUE = {"conv": 2e10, "linear": 8e10, "attention": 1e10}
BW, C_BLOCK, C_OP = 5e9, 2e-5, 3e-6


def synthetic(seed: int, n: int = 12, batch: int = 4) -> ModelProfile:
    rng = np.random.default_rng(seed)
    kinds = {k: rng.random(n) * 1e8 * (rng.random(n) < 0.6) for k in TRUE}
    fwd = sum(kinds.values())
    mem = rng.random(n) * 1e6
    ops = rng.integers(1, 40, n).astype(float)
    t = sum(batch * kinds[k] / TRUE[k] for k in TRUE) + batch * mem / BW + C_BLOCK + C_OP * ops
    return ModelProfile(name=f"s{seed}", block_names=tuple(f"b{i}" for i in range(n)), block_kinds=("other",) * n,
                        fwd_flops=fwd, bwd_flops=2 * fwd, num_params=np.zeros(n, int), out_bytes=np.ones(n),
                        edges=[[i, i + 1] for i in range(n - 1)], edge_bytes=np.ones(n - 1), mem_bytes=mem,
                        num_ops=ops, kind_flops=kinds,
                        measurements=(Measurement("box", batch, "fp32", t, float(t.sum())),))


def test_fit_recovers_known_rates_exactly() -> None:
    profiles = [synthetic(s) for s in range(4)]
    res = fit_device(profiles, "box", name="box")
    dev = res.device
    for k, v in TRUE.items():
        assert dev.kind_flops_per_s[k] == pytest.approx(v, rel=1e-6)
    assert dev.effective_bandwidth_bytes_per_s == pytest.approx(BW, rel=1e-6)
    assert dev.block_overhead_s == pytest.approx(C_BLOCK, rel=1e-6)
    assert dev.op_overhead_s == pytest.approx(C_OP, rel=1e-6)
    assert res.median_abs_relative_error < 1e-9 and abs(res.total_relative_error) < 1e-9
    held_out = synthetic(99)
    np.testing.assert_allclose(predict_block_times_s(dev, held_out, batch_size=4),
                               held_out.measurements[0].block_time_s, rtol=1e-6)
    assert dev.name == "box" and dev.peak("fp32") == pytest.approx(max(TRUE.values()), rel=1e-6)


def test_fit_keeps_base_datasheet_fields_and_errors() -> None:
    base = load_profile("laptop-cpu")
    res = fit_device([synthetic(1), synthetic(2)], "box", base=base, fit_overhead=False)
    assert res.device.peak("int8") == base.peak("int8") and res.device.block_overhead_s == 0.0
    assert "calibrated on 24 block measurements" in res.device.source
    with pytest.raises(ProfileError, match=r"`profiles` hold no measurement for device 'gpu'"):
        fit_device([synthetic(1)], "gpu")
    with pytest.raises(ProfileError, match=r"`batch_size` = 0; expected a positive integer"):
        predict_block_times_s(base, synthetic(1), batch_size=0)


def test_calibrate_this_machine(tmp_path: Path) -> None:
    res = calibrate_machine(scale="tiny", repeats=2, warmup=1, progress=False, name="this-box")
    dev = res.device
    assert dev.name == "this-box" and set(dev.kind_flops_per_s) <= {"conv", "dwconv", "linear", "attention", "matmul"}
    assert all(np.isfinite(v) and v > 0 for v in dev.kind_flops_per_s.values())
    assert np.isfinite(res.median_abs_relative_error)
    path = tmp_path / "me.toml"
    path.write_text(dev.to_toml())
    assert load_profile(path) == dev
    assert host_device().device_class == "laptop"
