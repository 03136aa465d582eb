"""FedBE's expansion and HFedMoE's budgeted expert updates on real models."""

from __future__ import annotations

import pytest
import torch

from edgeplan import ProblemDataError
from edgeplan.formulations.finetune import ExpertPlan
from edgeplan.validation.finetune.expansion import expand_blocks, expert_step, moe_model, train_only
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
