"""Federated rounds trained for real: FedBE's appended blocks (measured round, planned subsets, per-block
aggregation) and the multi-domain task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgeplan as ep
from edgeplan import ProblemDataError
from edgeplan.experiments.fedbe_rounds import fedbe_counts, run_fedbe_plan
from edgeplan.experiments.finetune_rounds import domain_task
from edgeplan.formulations.finetune import FineTunePlan
from edgeplan.validation.finetune.execute import validate_finetune
from edgeplan.validation.finetune.fedbe import expanded_model, fedbe_subsets, measured_fedbe_instance


def test_domain_task_gives_each_device_its_mixture_over_disjoint_alphabets() -> None:
    counts = np.array([[3, 0, 1], [0, 2, 0]])
    shards, held = domain_task(counts, 6, alphabet=4, vocab=50, held_out=6, seed=3)
    assert [s.shape for s in shards] == [(4, 6), (2, 6)] and held.shape == (6, 6)
    alphabets = [set(held[d::3].unique().tolist()) for d in range(3)]
    assert all(len(a) <= 4 for a in alphabets) and not (alphabets[0] & alphabets[1] or alphabets[1] & alphabets[2])
    assert set(shards[1].unique().tolist()) <= alphabets[1]
    with pytest.raises(ProblemDataError, match="`counts` has shape"):
        domain_task(np.ones((2, 30), dtype=int), 6, alphabet=4, vocab=50)


def test_measured_fedbe_round_trains_only_the_planned_blocks_and_averages_them() -> None:
    p = measured_fedbe_instance(3, model="gpt2:tiny", n_blocks=2, rounds=1, memory_share_low=1.0,
                                memory_share_high=1.0)
    subsets = fedbe_subsets(2)
    assert p.n_candidates == len(subsets) == 4 and p.n_blocks == 2
    # measured tables: training more blocks holds more memory and uploads their parameters
    mem, up = p.memory_bytes[0], p.upload_bytes[0]
    assert up[0] == 0 and up[1] == up[2] > 0 and up[3] == 2 * up[1]
    assert mem[0] < min(mem[1], mem[2]) and max(mem[1], mem[2]) < mem[3]
    r = ep.solve(p, "finetune-milp")
    assert r.status is ep.Status.OPTIMAL and not p.check(r.plan)
    report = validate_finetune(p, r.plan, rounds=1)  # the plan's subsets measured again: memory is exact
    assert report.fields == ("block_mask", "n_blocks") and "block_mask" in str(report)
    assert all(abs(row["memory_err"]) < 1e-9 and row["time_meas_s"] > 0 for row in report.rows)
    only_first = FineTunePlan([1, 1, 0])  # devices 0 and 1 train appended block 0; nobody trains block 1
    base = expanded_model("gpt2:tiny", 2, batch_size=1)
    blocks = base.module.transformer.h
    before = [{k: v.clone() for k, v in blocks[b].state_dict().items()} for b in base.added]
    trace = run_fedbe_plan(p, only_first, "block-0", fedbe_counts(3), rounds=1, local_steps=2, batch=2, model=base)
    assert len(trace.loss) == 2 and np.isfinite(trace.loss).all() and trace.clock_s[1] > 0
    moved = [any(not torch.equal(blocks[b].state_dict()[k], before[j][k]) for k in before[j])
             for j, b in enumerate(base.added)]
    assert moved == [True, False]


def test_hfedmoe_aggregation_keeps_an_expert_from_the_devices_that_used_it() -> None:
    from edgeplan.experiments.hfedmoe_rounds import aggregate_moe
    from edgeplan.validation.finetune.moe import moe_model

    a, b = moe_model(4, 2, n_layers=1, seed=0), moe_model(4, 2, n_layers=1, seed=1)
    usage = np.array([[[0.5, 0.5, 0.0, 0.0]], [[0.0, 0.5, 0.5, 0.0]]])  # expert 3: nobody; 0: only a
    scores = np.array([[[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]])  # b's importance is 0: gate from a
    out = aggregate_moe([a, b], usage, scores, np.array([1.0, 3.0]), tau=0.1)
    sa, sb = a.state_dict(), b.state_dict()
    key = "model.layers.0.mlp.experts.down_proj"
    torch.testing.assert_close(out[key][0], sa[key][0])
    torch.testing.assert_close(out[key][2], sb[key][2])
    torch.testing.assert_close(out[key][1], 0.25 * sa[key][1] + 0.75 * sb[key][1])
    torch.testing.assert_close(out[key][3], 0.25 * sa[key][3] + 0.75 * sb[key][3])  # fallback: data-weighted
    torch.testing.assert_close(out["model.layers.0.mlp.gate.weight"], sa["model.layers.0.mlp.gate.weight"])
    plain = aggregate_moe([a, b], usage, scores, np.array([1.0, 3.0]), tau=0.1, how="fedavg")
    torch.testing.assert_close(plain[key], 0.25 * sa[key] + 0.75 * sb[key])
    with pytest.raises(ProblemDataError, match="`how` = 'mean'"):
        aggregate_moe([a, b], usage, scores, np.array([1.0, 3.0]), tau=0.1, how="mean")


def test_hfedmoe_rounds_train_under_budgets() -> None:
    from edgeplan.experiments.hfedmoe_rounds import run_hfedmoe

    curve = run_hfedmoe([0.5, 1.0], rounds=2, local_steps=2, batch=4)
    assert len(curve) == 3 and np.isfinite(curve).all() and curve[-1] < curve[0]
    with pytest.raises(ProblemDataError, match="`budgets`"):
        run_hfedmoe([1.5])
