r"""Federated LoRA fine-tuning for real: rounds of a measured FedQuad plan, loss against emulated wall-clock.

Each device of a :class:`~edgeplan.formulations.finetune.round.FineTuneRound` built on a zoo model
(``finetune-measured``) trains its planned configuration for real: ``peft`` LoRA on its top :math:`d_i`
blocks, the lowest :math:`q_i` of them with :math:`b_i`-bit saved activations, ``local_steps`` Adam steps on
its own shard of a synthetic task. The server averages each block's LoRA tensors over the devices that trained
it, weighted by their data (**layer-wise aggregation** of adapters of different depths); a block nobody trained
keeps its value. The round's wall-clock is emulated: device :math:`i` takes its measured host step time times
its ``time_scale`` per step, plus its planned upload time; the round lasts the slowest device plus the
server's :math:`s_0`.

The task (:func:`permutation_task`): sequences over a small alphabet in which every token is a fixed random
permutation of the one before; a frozen random model predicts it no better than chance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.validation.finetune.execute import parse_model
from edgeplan.validation.finetune.measure import lora_model
from edgeplan.validation.finetune.quant import SavedTensors


def permutation_task(n_samples: int, seq_len: int, *, alphabet: int = 16, vocab: int = 1000,
                     seed: int = 0) -> torch.Tensor:
    """``(n_samples, seq_len)`` token ids: a random start, then :math:`x_{t+1} = \\pi(x_t)` for a fixed random
    permutation :math:`\\pi` of ``alphabet`` tokens drawn from the vocabulary (the same :math:`\\pi` for a seed)."""
    rng = np.random.default_rng(seed)
    tokens = rng.choice(vocab, size=alphabet, replace=False)
    perm = rng.permutation(alphabet)
    start = rng.integers(alphabet, size=n_samples)
    idx = np.empty((n_samples, seq_len), dtype=np.int64)
    idx[:, 0] = start
    for t in range(1, seq_len):
        idx[:, t] = perm[idx[:, t - 1]]
    return torch.as_tensor(tokens[idx])


def domain_task(counts: Any, seq_len: int, *, alphabet: int = 8, vocab: int = 1000, held_out: int = 64,
                seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per device, its sequences of a multi-domain :func:`permutation_task`, and a held-out set.

    Domain :math:`d` has its own ``alphabet`` tokens (disjoint from the other domains') and its own permutation;
    device :math:`i` holds ``counts[i, d]`` sequences of domain :math:`d`. The held-out set has ``held_out``
    sequences spread evenly over the domains: a model trained on skewed devices must merge what each learned.

    Parameters
    ----------
    counts
        ``(N, D)`` sequences per device and domain (e.g. :func:`~edgeplan.validation.finetune.fedbe.domain_mixture`).
    seq_len
        Tokens per sequence.
    alphabet, vocab, held_out, seed
        Tokens per domain, the vocabulary they are drawn from, held-out sequences, and the seed.
    """
    c = np.asarray(counts, dtype=np.int64)
    n_dom = c.shape[1]
    if c.ndim != 2 or (c < 0).any() or alphabet * n_dom > vocab:
        raise ProblemDataError(f"`counts` has shape {c.shape}; expected (devices, domains) of counts >= 0 with "
                               f"domains x alphabet <= vocab ({vocab})")
    rng = np.random.default_rng(seed)
    tokens = rng.choice(vocab, size=(n_dom, alphabet), replace=False)
    perms = np.stack([rng.permutation(alphabet) for _ in range(n_dom)])

    def draw(domains: np.ndarray) -> torch.Tensor:
        idx = np.empty((domains.size, seq_len), dtype=np.int64)
        idx[:, 0] = rng.integers(alphabet, size=domains.size)
        for t in range(1, seq_len):
            idx[:, t] = perms[domains, idx[:, t - 1]]
        return torch.as_tensor(tokens[domains[:, None], idx])

    shards = [draw(np.repeat(np.arange(n_dom), row)) for row in c]
    return shards, draw(np.arange(held_out) % n_dom)


def _lora_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if "lora_" in n}


def aggregate_layerwise(states: list[dict[str, torch.Tensor]], weights: list[float],
                        previous: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each LoRA tensor averaged over the devices whose state has it (weighted); the others keep ``previous``.

    Parameters
    ----------
    states
        Per device, its trained LoRA tensors by parameter name (a device of depth :math:`d` has only its top
        :math:`d` blocks').
    weights
        Per device, its aggregation weight (data share).
    previous
        The global adapters before the round (every name).
    """
    out = dict(previous)
    for name in previous:
        have = [(s[name], w) for s, w in zip(states, weights, strict=True) if name in s]
        total = sum(w for _, w in have)
        if have and total > 0:
            out[name] = sum(t * (w / total) for t, w in have)
    return out


@dataclass
class RunTrace:
    """One plan's run: emulated wall-clock and held-out loss after each round.

    Attributes
    ----------
    label
        The plan's name.
    clock_s, loss
        After round 0 (start) .. R.
    round_s
        Each round's emulated duration.
    """

    label: str
    clock_s: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)

    def time_to(self, target: float) -> float:
        """Emulated seconds until the held-out loss first reaches ``target`` (``inf``: never)."""
        return next((t for t, v in zip(self.clock_s, self.loss, strict=True) if v <= target), float("inf"))


def _eval_loss(name: str, size: str, state: dict[str, torch.Tensor], data: torch.Tensor, L: int) -> float:
    lm = lora_model(name, L, size=size, batch_size=1)
    lm.module.load_state_dict(state, strict=False)
    lm.module.eval()
    with torch.no_grad():
        return float(lm.module(input_ids=data, labels=data).loss)


def run_plan(problem: FineTuneRound, plan: FineTunePlan, label: str, *, rounds: int = 8, local_steps: int = 10,
             batch: int = 8, lr: float = 3e-3, seed: int = 0, samples_per_device: int = 64) -> RunTrace:
    """Run ``rounds`` federated rounds of ``plan`` for real (see the module docstring).

    Parameters
    ----------
    problem
        A measured FedQuad round (``finetune-measured``: ``model`` names the zoo model).
    plan
        Its plan.
    label
        The trace's name.
    rounds, local_steps, batch, lr
        Rounds, local Adam steps per device and round, sequences per step, learning rate.
    seed
        Seeds the task and the batches.
    samples_per_device
        Sequences in each device's shard.
    """
    name, size = parse_model(problem.model)
    if problem.field_index("lora_depth") is None:
        raise ProblemDataError("the round's candidates are not FedQuad configurations")
    choice = problem.decode_plan(plan)
    configs = [problem.describe(i, int(c)) for i, c in enumerate(choice)]
    full = lora_model(name, 1, size=size)
    L = full.n_layers
    vocab = full.module.config.vocab_size
    seq = full.inputs["input_ids"].shape[1]
    data = permutation_task(samples_per_device * problem.n_devices + 64, seq, vocab=vocab, seed=seed)
    held_out = data[-64:]
    shards = data[:-64].view(problem.n_devices, samples_per_device, seq)
    glob = _lora_state(lora_model(name, L, size=size).module)  # every block's adapters at their start
    trace = RunTrace(label, [0.0], [_eval_loss(name, size, glob, held_out, L)])
    gen = torch.Generator().manual_seed(seed)
    weights = problem.weights.tolist()
    for _ in range(rounds):
        states, times = [], []
        for i, cfg in enumerate(configs):
            d, q, b = cfg["lora_depth"], cfg.get("quantized_layers", 0), cfg.get("bits", 0)
            lm = lora_model(name, d, size=size)
            lm.module.load_state_dict({k: v for k, v in glob.items()
                                       if k in dict(lm.module.named_parameters())}, strict=False)
            opt = torch.optim.Adam(lm.trainable(), lr=lr)
            per_block = [b if L - d <= j < L - d + q else 0 for j in range(L)]
            step_times = []
            for _ in range(local_steps):
                ids = shards[i][torch.randint(samples_per_device, (batch,), generator=gen)]
                saved = SavedTensors.for_model(lm.module)
                handles = saved.attach(lm.blocks, per_block)
                t0 = time.perf_counter()
                try:
                    with saved:
                        loss = lm.module(input_ids=ids, labels=ids).loss
                finally:
                    for h in handles:
                        h.remove()
                loss.backward()
                opt.step()
                opt.zero_grad()
                step_times.append(time.perf_counter() - t0)
            states.append(_lora_state(lm.module))
            up = problem.upload_bytes[i, choice[i]] / problem.uplink_bps[i]
            times.append(float(np.median(step_times)) * local_steps * problem.time_scale[i] + up)
        glob = aggregate_layerwise(states, weights, glob)
        dt = problem.server_time_s + max(times)
        trace.round_s.append(dt)
        trace.clock_s.append(trace.clock_s[-1] + dt)
        trace.loss.append(_eval_loss(name, size, glob, held_out, L))
    return trace


def compare_plans(problem: FineTuneRound, methods: tuple[str, ...] = ("finetune-sweep", "fedquad", "uniform-depth",
                                                                      "full-depth"), **kw: Any) -> list[RunTrace]:
    """:func:`run_plan` for each method's plan (methods without a plan are left out).

    Parameters
    ----------
    problem
        A measured FedQuad round (``finetune-measured``).
    methods
        Methods whose plans run.
    kw
        :func:`run_plan`'s keywords (``rounds``, ``local_steps``, ``batch``, ``lr``, ``seed``).
    """
    from edgeplan.solvers.api import solve

    out = []
    for m in methods:
        r = solve(problem, m, seed=kw.get("seed", 0))
        if r.has_plan:
            out.append(run_plan(problem, r.plan, m, **kw))
    return out


__all__ = ["RunTrace", "aggregate_layerwise", "compare_plans", "domain_task", "permutation_task", "run_plan"]
