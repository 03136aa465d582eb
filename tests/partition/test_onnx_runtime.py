"""ONNX export of partition plans, run for real in ONNX Runtime: the chained stages reproduce the torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import edgeplan as ep
from edgeplan.formulations.partition.pipeline import PipelinePlan
from edgeplan.io.export.onnx import run_onnx_stages
from edgeplan.profiles.profiler import profile_model
from edgeplan.validation.zoo import build_model

DEVICES = ["jetson-nano", "jetson-orin-nx-16gb", "raspberry-pi-5"]


class Skip(torch.nn.Module):
    """A model of our own (not from the zoo) with a skip connection across a stage boundary."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.c(torch.relu(self.b(h)) + h)


def _logits(out: object) -> torch.Tensor:
    out = out[0] if isinstance(out, tuple) else out
    return getattr(out, "logits", getattr(out, "last_hidden_state", out))


def test_any_profiled_module_exports_and_runs_chained_in_onnx_runtime(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module, x = Skip().eval(), torch.randn(4, 16)
    prof = profile_model(module, (x,), timing=False, progress=False)
    p = ep.PipelinePartition(prof, DEVICES, rates_bps=np.full((3, 3), 1e8))
    plan = PipelinePlan(boundaries=[0, 1, 2, prof.n_blocks], devices=[0, 1, 2])
    ep.export_plan(p, plan, "onnx", tmp_path, module=module, inputs=(x,))
    (out,) = run_onnx_stages(tmp_path, x).values()
    np.testing.assert_allclose(out, module(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ep.PlanError, match="2 given; the exported model takes 1"):
        run_onnx_stages(tmp_path, x, x)


@pytest.mark.parametrize(("name", "size"), [("resnet18", "small"), ("gpt2", "tiny")])
def test_zoo_split_plan_runs_chained_in_onnx_runtime(name: str, size: str, tmp_path: Path) -> None:
    z = build_model(name, size=size)
    prof = profile_model(z.module, z.example_inputs, timing=False, progress=False)
    p = ep.SplitInference(prof, ["phone-midrange", "edge-server-t4", "cloud-a100"], ["ethernet-1g", "ethernet-1g"])
    tiers = np.repeat([0, 1, 2], -(-prof.n_blocks // 3))[: prof.n_blocks]
    plan = ep.SplitPlan(tiers)
    files = ep.export_plan(p, plan, "onnx", tmp_path, module=z.module, inputs=z.example_inputs)
    assert sum(f.suffix == ".onnx" for f in files) == 3
    got = run_onnx_stages(tmp_path, *z.example_inputs)
    with torch.no_grad():
        ref = _logits(z.module(*z.example_inputs)).numpy()
    match = [a for a in got.values() if a.shape == ref.shape]
    assert match, {k: v.shape for k, v in got.items()}
    np.testing.assert_allclose(match[0], ref, rtol=1e-4, atol=1e-4)
