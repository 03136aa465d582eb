"""A pipeline plan run by torch.distributed.pipelining (gloo, one process per stage), and its export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeplan as ep
from edgeplan.formulations.partition import PipelinePlan
from edgeplan.validation.partition import execute as vp
from edgeplan.validation.partition.pipelining import run_torch_pipelining, traced_boundary_bytes
from edgeplan.validation.zoo import build_model

SPEC = {"name": "gpt2", "size": "tiny", "batch_size": 1, "seed": 0}


def test_torch_pipelining_runs_the_plan_and_the_export_carries_what_it_sends(tmp_path: Path) -> None:
    z = build_model("gpt2", size="tiny")
    prof = vp.profile_on_host(z.module, z.example_inputs, repeats=2, zoo=SPEC)
    p = vp.host_pipeline_problem(prof, 2, rates_bps=1e10, n_micro=4)
    cut = prof.block_names.index("transformer.h.1")           # between two transformer blocks: the mask crosses
    plan = PipelinePlan([0, cut, prof.n_blocks], [0, 1])
    report = run_torch_pipelining(p, plan, SPEC, z.example_inputs, steps=2, schedule="1f1b")
    assert report.output_max_abs_error < 1e-5                  # the pipelined output is the model's
    assert report.measured_s > 0 and np.isfinite(report.predicted_s)
    assert "torch.distributed.pipelining (2 stages, 1f1b, 4 micro-batches)" in str(report)
    planned = float(p.data()["boundary"][cut])
    (traced,) = report.details["traced_bytes"]
    assert traced > planned                                    # the 16x16 causal mask travels too (256 B here)
    (path,) = ep.export_plan(p, plan, "split-spec", tmp_path)
    (link,) = json.loads(path.read_text())["links"]
    assert link["planned_bytes_per_micro_batch"] == planned    # the export carried only this before
    assert link["traced_bytes_per_micro_batch"] == traced == link["bytes_per_micro_batch"]
    late = prof.block_names.index("transformer.ln_f")          # after the last block only the hidden states cross
    assert traced_boundary_bytes(p, PipelinePlan([0, late, prof.n_blocks], [0, 1]), z.module, z.example_inputs) == [
        float(p.data()["boundary"][late])]


def test_a_split_plan_runs_as_a_pipeline_of_its_tiers() -> None:
    z = build_model("resnet18", size="tiny")
    spec = {"name": "resnet18", "size": "tiny", "batch_size": 1, "seed": 0}
    prof = vp.profile_on_host(z.module, z.example_inputs, repeats=2, zoo=spec)
    p = vp.host_split_problem(prof, n_tiers=2, rates_bps=1e10)
    plan = ep.SplitPlan.from_cuts([prof.n_blocks // 2], prof.n_blocks)
    with pytest.raises(ep.ProblemDataError, match="'1f1b' needs at least as many micro-batches as stages"):
        run_torch_pipelining(p, plan, spec, z.example_inputs, schedule="1f1b")   # one micro-batch, two stages
    report = run_torch_pipelining(p, plan, spec, z.example_inputs, steps=1)
    assert report.output_max_abs_error < 1e-4 and report.predicted_s == p.evaluate(plan).latency_s
    assert "(2 stages, gpipe, 1 micro-batches)" in str(report) and "tier 1" in str(report)
