"""FedBE's expansion and HFedMoE's budgeted expert updates on real models."""

from __future__ import annotations

import pytest
import torch

from edgeplan import ProblemDataError
from edgeplan.formulations.finetune import ExpertPlan
from edgeplan.validation.finetune.expansion import expand_blocks, train_only
from edgeplan.validation.finetune.moe import expert_step, moe_model
from edgeplan.validation.zoo import build_model


@pytest.mark.parametrize("name", ["llama_small", "gpt2"])
def test_expanded_model_computes_what_the_original_did_and_trains_only_its_blocks(name: str) -> None:
    z = build_model(name, size="tiny", batch_size=2)
    before = z.module(input_ids=z.example_inputs[0]).logits
    added = expand_blocks(z.module, name, 2)
    assert len(added) == 2
    after = z.module(input_ids=z.example_inputs[0]).logits
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    params = train_only(z.module, name, [added[1]])
    z.module(input_ids=z.example_inputs[0], labels=z.example_inputs[0]).loss.backward()
    with_grad = {n for n, p in z.module.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in z.module.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in params) > 0
    assert any(p.grad.abs().sum() > 0 for p in params)  # the zeroed output projections learn first
    assert all(f".{added[1]}." in n for n in with_grad)
    with pytest.raises(ProblemDataError, match="`n_blocks` = 0"):
        expand_blocks(z.module, name, 0)


@pytest.mark.parametrize("method", ["expert-dp", "hfedmoe"])
def test_only_the_selected_experts_receive_gradients(method: str) -> None:
    model = moe_model(8, 2, seed=1)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(0))
    step = expert_step(model, ids, method=method, budget_fraction=0.4)
    assert len(step.selected) == 2 and step.loss > 0
    for layer, chosen, sel in zip(model.model.layers, step.selected, step.selections, strict=True):
        assert chosen and not sel.check(ExpertPlan(chosen))
        assert sel.cost.sum() == 4 * 16 * 2  # every token routed to top-2 experts
        for p in layer.mlp.experts.parameters():
            per_expert = p.grad.flatten(1).abs().sum(dim=1)
            nonzero = set(torch.nonzero(per_expert).flatten().tolist())
            assert nonzero <= set(chosen), (nonzero, chosen)
            assert nonzero, "a selected expert that tokens reached gets a gradient"
    exact = expert_step(moe_model(8, 2, seed=1), ids, method="expert-dp", budget_fraction=0.4)
    value = lambda st: sum(s.objective(ExpertPlan(c)) for s, c in zip(st.selections, st.selected, strict=True))  # noqa: E731
    assert value(exact) >= value(step) - 1e-12


def test_layerwise_aggregation_averages_only_the_devices_that_trained_a_block() -> None:
    from edgeplan.experiments.finetune_rounds import aggregate_layerwise

    prev = {"h.0.a": torch.zeros(2), "h.1.a": torch.ones(2)}
    states = [{"h.1.a": torch.full((2,), 3.0)}, {"h.0.a": torch.full((2,), 2.0), "h.1.a": torch.full((2,), 5.0)}]
    out = aggregate_layerwise(states, [1.0, 3.0], prev)
    torch.testing.assert_close(out["h.0.a"], torch.full((2,), 2.0))       # only device 1 trained block 0
    torch.testing.assert_close(out["h.1.a"], torch.full((2,), 4.5))       # (1 * 3 + 3 * 5) / 4
    assert aggregate_layerwise([{}], [1.0], prev)["h.1.a"] is prev["h.1.a"]  # nobody: unchanged


def test_planned_rounds_of_real_lora_training_lower_the_loss() -> None:
    from edgeplan import solve
    from edgeplan.experiments.finetune_rounds import permutation_task, run_plan
    from edgeplan.validation.finetune.execute import measured_instance

    a = permutation_task(4, 8, seed=3)
    assert a.shape == (4, 8) and len(set(a.flatten().tolist())) <= 16
    p = measured_instance(3, model="gpt2:tiny", rounds=1, memory_share_low=2e-5, memory_share_high=1e-4)
    r = solve(p, "finetune-sweep")
    trace = run_plan(p, r.plan, "exact", rounds=3, local_steps=5, lr=1e-2)
    assert len(trace.loss) == 4 and trace.loss[-1] < trace.loss[0] - 0.05, trace.loss
    assert trace.clock_s[-1] == pytest.approx(sum(trace.round_s))
    assert min(trace.round_s) > p.server_time_s
    assert trace.time_to(trace.loss[-1]) == trace.clock_s[-1] and trace.time_to(-1.0) == float("inf")
