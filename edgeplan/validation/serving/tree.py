r"""Several drafters per request: token-tree verification and CoSine's confidence-based fusion, on real models.

**Token tree** (SpecInfer's multi-step speculative sampling; Miao et al., 2024). Each of :math:`m` drafters
drafts its own chain of :math:`k` tokens; the chains share prefixes, which makes a tree. The target scores
every chain in one batched pass (each chain as its own sequence, the same numbers tree attention computes
with a shared prefix). From the root, at each node the drafters whose chains pass through it offer their next
tokens :math:`x_j \sim q_j` in turn: :math:`x_j` is accepted with probability
:math:`\min(1, p(x_j)/q_j(x_j))`, else :math:`p \leftarrow \mathrm{norm}(\max(0, p - q_j))` and the next one is
tried; when all are rejected, a token is drawn from the residual :math:`p` and the step ends; an accepted token
moves to its child. Every emitted token has the target's distribution (a chi-square test checks it). Greedy:
a node accepts the candidate equal to the target's argmax.

**Fusion** (CoSine; greedy only). At each draft position every drafter proposes its most likely next token
and the hub keeps the most confident one (highest drafter probability); all drafters continue from the fused
token. The one fused chain is verified greedily. Under sampling, the fused token's proposal distribution is a
maximum over drafters, which the acceptance rule would need; we do not claim it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.validation.serving.speculative import DecodeStats, _draw, decode_loop, distributions, verify_tree


def _draft_chains(drafters: list[Any], ids: Any, k: int, temperature: float,
                  processor: Callable[[Any, Any], Any] | None, rng: np.random.Generator
                  ) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    import torch

    chains, qs = [], []
    for drafter in drafters:
        seq, chain, q = ids, [], []
        for _ in range(k):
            dist = distributions(drafter, seq, 1, temperature, processor)[0]
            x = _draw(dist, temperature, rng)
            chain.append(x)
            q.append(dist)
            seq = torch.cat([seq, torch.tensor([x])])
        chains.append(chain)
        qs.append(q)
    return chains, qs


def tree_generate(target: Any, drafters: list[Any], prompt: Any, max_new: int, k: int, *, temperature: float = 0.0,
                  processor: Callable[[Any, Any], Any] | None = None,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, DecodeStats]:
    """Generate ``max_new`` tokens with a token tree of one ``k``-token chain per drafter (module docstring).

    Parameters
    ----------
    target, drafters
        The target and the drafters (one chain each).
    prompt
        1-D token ids.
    max_new, k
        Tokens to generate and draft tokens per chain.
    temperature
        0: greedy; else sampling at this temperature.
    processor
        A ``transformers`` logits processor for every model.
    rng
        Draws of drafts and acceptances.
    """
    import torch

    if k < 1 or max_new < 1 or not drafters:
        raise ProblemDataError(f"`k` = {k}, `max_new` = {max_new}, {len(drafters)} drafters; expected k, max_new and "
                               "the drafters >= 1")
    rng = np.random.default_rng(0) if rng is None else rng

    def step(ids: Any, kk: int) -> tuple[list[int], int, int]:
        chains, qs = _draft_chains(drafters, ids, kk, temperature, processor, rng)
        p = [distributions(target, torch.cat([ids, torch.tensor(c)]), kk + 1, temperature, processor) for c in chains]
        acc, token = verify_tree(p, chains, qs, temperature, rng)
        return acc, token, kk * len(drafters)

    return decode_loop(prompt, max_new, k, step)


def fused_generate(target: Any, drafters: list[Any], prompt: Any, max_new: int, k: int) -> tuple[np.ndarray,
                                                                                                   DecodeStats]:
    """Greedy generation with CoSine's confidence-based fusion of the drafters' tokens (module docstring).

    Parameters
    ----------
    target, drafters
        The target and the drafters whose tokens are fused.
    prompt
        1-D token ids.
    max_new, k
        Tokens to generate and fused draft tokens per step.
    """
    import torch

    from edgeplan.validation.serving.speculative import greedy_verify

    def step(ids: Any, kk: int) -> tuple[list[int], int, int]:
        seq = ids
        for _ in range(kk):
            dists = [distributions(d, seq, 1, 1.0)[0] for d in drafters]
            best = max(range(len(drafters)), key=lambda j: float(dists[j].max()))
            seq = torch.cat([seq, torch.tensor([int(np.argmax(dists[best]))])])
        draft = seq[ids.numel():].numpy()
        n_ok, token = greedy_verify(distributions(target, seq, kk + 1, 0.0), draft)
        return draft[:n_ok].tolist(), token, kk

    return decode_loop(prompt, max_new, k, step)


__all__ = ["fused_generate", "tree_generate"]
