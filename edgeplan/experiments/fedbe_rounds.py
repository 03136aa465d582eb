r"""FedBE for real: federated training of appended blocks, loss against emulated wall-clock.

A measured FedBE round (``"fedbe-measured"``: a zoo decoder expanded with :math:`J` zero-output blocks, every
subset's step measured on this host) is trained as planned. Device :math:`i` holds a Dirichlet mixture of
synthetic domains (:func:`~edgeplan.experiments.finetune_rounds.domain_task`, the mixture of
:func:`~edgeplan.validation.finetune.fedbe.domain_mixture`); each round it starts from the global appended
blocks, trains its planned subset :math:`S_i` (everything else frozen, Adam) for ``local_steps`` steps on its
own data, and uploads those blocks. The server averages each block over the devices that trained it, weighted
by their data shares; a block nobody trained keeps its value. Wall-clock is emulated as in
:mod:`~edgeplan.experiments.finetune_rounds`: device :math:`i` takes its measured host step times its
``time_scale`` per step, plus its planned upload time; a device that trains nothing runs its forward passes
only (the table's empty configuration); the round lasts the slowest device plus :math:`s_0`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.experiments.finetune_rounds import RunTrace, aggregate_layerwise, domain_task
from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.validation.finetune.expansion import EXPANDABLE, _get, train_only
from edgeplan.validation.finetune.fedbe import FEDBE_FIELDS, ExpandedModel, domain_mixture, expanded_model


def _subset(problem: FineTuneRound, i: int, c: int) -> tuple[int, ...]:
    mask = problem.describe(i, c)["block_mask"]
    return tuple(j for j in range(problem.n_blocks) if mask >> j & 1)


def _held_out_loss(module: torch.nn.Module, data: torch.Tensor) -> float:
    with torch.no_grad():
        return float(module(input_ids=data, labels=data).loss)


def run_fedbe_plan(problem: FineTuneRound, plan: FineTunePlan, label: str, counts: Any, *, rounds: int = 8,
                   local_steps: int = 10, batch: int = 8, lr: float = 3e-3, seed: int = 0,
                   model: ExpandedModel | None = None) -> RunTrace:
    """Run ``rounds`` FedBE rounds of ``plan`` for real (see the module docstring).

    Parameters
    ----------
    problem
        A measured FedBE round (``"fedbe-measured"``: ``model`` names the expanded zoo decoder).
    plan
        Its plan.
    label
        The trace's name.
    counts
        ``(N, D)`` sequences per device and domain (:func:`~edgeplan.validation.finetune.fedbe.domain_mixture`
        with the generator's ``n_domains``, ``dirichlet_alpha`` and ``seed``).
    rounds, local_steps, batch, lr, seed
        Rounds, local Adam steps per round, sequences per step, learning rate, and the data and sampling seed.
    model
        The expanded model to train (default: built from ``problem.model``); its appended blocks end as the
        global ones.
    """
    if problem.config_fields != FEDBE_FIELDS or not problem.model:
        raise ProblemDataError(f"the round is not a measured FedBE round (config fields {problem.config_fields}, "
                               f"model {problem.model!r}); build it with 'fedbe-measured'")
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[0] != problem.n_devices:
        raise ProblemDataError(f"`counts` has shape {c.shape}; expected ({problem.n_devices}, domains)")
    choice = problem.decode_plan(plan)
    subsets = [_subset(problem, i, int(k)) for i, k in enumerate(choice)]
    base = model or expanded_model(problem.model, problem.n_blocks, batch_size=1)
    seq = base.input_ids.shape[1]
    shards, held_out = domain_task(c, seq, vocab=base.module.config.vocab_size, seed=seed)
    stack = lambda m: _get(m, EXPANDABLE[base.name][0])  # noqa: E731
    # the appended blocks' tensors, keyed as in the block list's state dict ("<index>.<name>")
    blocks_of = lambda m, keep: {k: v.detach().clone() for k, v in stack(m).state_dict().items()  # noqa: E731
                                 if int(k.split(".", 1)[0]) in keep}
    glob = blocks_of(base.module, set(base.added))
    trace = RunTrace(label, [0.0], [_held_out_loss(base.module, held_out)])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(rounds):
        trained: list[dict[str, torch.Tensor]] = []
        times = []
        for i, s in enumerate(subsets):
            em = copy.deepcopy(base)  # holds the global blocks
            params = train_only(em.module, em.name, em.blocks(s))
            opt = torch.optim.Adam(params, lr=lr) if params else None
            steps = []
            for _ in range(local_steps):
                ids = shards[i][torch.randint(shards[i].shape[0], (batch,), generator=gen)]
                t0 = time.perf_counter()
                if opt is None:
                    with torch.no_grad():
                        em.module(input_ids=ids, labels=ids)
                else:
                    em.module(input_ids=ids, labels=ids).loss.backward()
                    opt.step()
                    opt.zero_grad()
                steps.append(time.perf_counter() - t0)
            trained.append(blocks_of(em.module, set(em.blocks(s))))
            up = problem.upload_bytes[i, choice[i]] / problem.uplink_bps[i]
            times.append(float(np.median(steps)) * local_steps * problem.time_scale[i] + up)
        glob = aggregate_layerwise(trained, problem.weights.tolist(), glob)
        stack(base.module).load_state_dict(glob, strict=False)
        dt = problem.server_time_s + max(times)
        trace.round_s.append(dt)
        trace.clock_s.append(trace.clock_s[-1] + dt)
        trace.loss.append(_held_out_loss(base.module, held_out))
    return trace


def compare_fedbe(problem: FineTuneRound, counts: Any,
                  methods: tuple[str, ...] = ("finetune-milp", "fedbe", "fedquad", "uniform-depth", "full-depth"),
                  **kw: Any) -> list[RunTrace]:
    """:func:`run_fedbe_plan` for each method's plan (methods without a plan are left out; a plan that leaves a
    block below its coverage still runs).

    Parameters
    ----------
    problem, counts
        As in :func:`run_fedbe_plan`.
    methods
        Methods whose plans run.
    kw
        :func:`run_fedbe_plan`'s keywords.
    """
    from edgeplan.solvers.api import solve

    out = []
    for m in methods:
        r = solve(problem, m, seed=kw.get("seed", 0))
        if r.has_plan:
            out.append(run_fedbe_plan(problem, r.plan, m, counts, **kw))
    return out


def fedbe_counts(n_devices: int, *, seed: int = 0, n_domains: int = 4, dirichlet_alpha: float = 0.5) -> np.ndarray:
    """The domain mixture ``"fedbe-measured"`` drew for these parameters (the generator seeds it with
    ``seed + 1``)."""
    return domain_mixture(n_devices, n_domains, dirichlet_alpha, seed=seed + 1)


__all__ = ["compare_fedbe", "fedbe_counts", "run_fedbe_plan"]
