r"""Several drafters per request: token-tree verification and CoSine's confidence-based fusion, on real models.

**Token tree** (SpecInfer's multi-step speculative sampling; Miao et al., 2024). Each of :math:`m` drafters
drafts its own chain of :math:`k` tokens; the chains share prefixes, which makes a tree. The target scores the
whole tree in one pass with **tree attention** (:func:`tree_distributions`): the context once, then each tree
node once, every node attending to the context and its own ancestors, at the position of its depth. From the
root, at each node the drafters whose chains pass through it offer their next
tokens :math:`x_j \sim q_j` in turn: :math:`x_j` is accepted with probability
:math:`\min(1, p(x_j)/q_j(x_j))`, else :math:`p \leftarrow \mathrm{norm}(\max(0, p - q_j))` and the next one is
tried; when all are rejected, a token is drawn from the residual :math:`p` and the step ends; an accepted token
moves to its child. Every emitted token has the target's distribution (a chi-square test checks it). Greedy:
a node accepts the candidate equal to the target's argmax.

**Fusion** (CoSine). At each draft position every drafter proposes a next token and the hub keeps the most
confident one (the highest probability its own drafter gave it); all drafters continue from the fused token.
The one fused chain is verified by the usual rule. Greedy, each drafter proposes its most likely token and the
target's greedy check follows. Under sampling, drafter :math:`j` draws :math:`x_j \sim q_j` independently, and
the fused token's law, which the acceptance rule needs, is exactly (:func:`fused_proposal`; ties go to the lowest
drafter index)

.. math::

    q_F(x) = \sum_j q_j(x) \prod_{i < j} P\big(q_i(X_i) < q_j(x)\big) \prod_{i > j} P\big(q_i(X_i) \le q_j(x)\big),

so every emitted token has the target's distribution (a chi-square test checks it).
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


def token_tree(chains: list[list[int]]) -> tuple[list[int], list[int], list[int], list[list[int]]]:
    """The prefix tree of ``chains``: its nodes' tokens, parents (-1: a child of the context) and depths (1 for the
    first draft position), and each chain's path of node indices."""
    tokens: list[int] = []
    parent: list[int] = []
    depth: list[int] = []
    child: dict[tuple[int, int], int] = {}
    paths = []
    for chain in chains:
        at, path = -1, []
        for x in chain:
            key = (at, int(x))
            if key not in child:
                child[key] = len(tokens)
                tokens.append(int(x))
                parent.append(at)
                depth.append(1 if at < 0 else depth[at] + 1)
            at = child[key]
            path.append(at)
        paths.append(path)
    return tokens, parent, depth, paths


def tree_inputs(trees: list[tuple[Any, list[list[int]]]]) -> tuple[Any, Any, Any, list[list[list[int]]]]:
    """A left-padded batch of token trees for one forward pass: ids ``(B, L)``, an additive attention mask
    ``(B, 1, L, L)`` (0 where a position may attend: the causal context, and for a tree node the context, its
    ancestors and itself), position ids ``(B, L)`` (a node sits at its depth after the context), and for each tree
    and chain the row positions whose logits predict the chain's next tokens (the context's last position, then
    the chain's nodes).

    Parameters
    ----------
    trees
        ``(context ids, chains)`` per request; no chains: the context alone.
    """
    import torch

    built = [(np.asarray(ctx, dtype=np.int64), token_tree(chains)) for ctx, chains in trees]
    L = max(len(ctx) + len(t[0]) for ctx, t in built)
    ids = torch.zeros((len(built), L), dtype=torch.long)
    allow = torch.zeros((len(built), L, L), dtype=torch.bool)
    pos = torch.zeros((len(built), L), dtype=torch.long)
    rows = []
    for b, (ctx, (tokens, parent, depth, paths)) in enumerate(built):
        n, off = len(ctx), L - len(ctx) - len(tokens)
        ids[b, off:] = torch.as_tensor(np.concatenate([ctx, np.asarray(tokens, dtype=np.int64)]))
        pos[b, off:off + n] = torch.arange(n)
        pos[b, off + n:] = n - 1 + torch.as_tensor(depth, dtype=torch.long)
        allow[b, off:off + n, off:off + n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
        for i in range(len(tokens)):
            allow[b, off + n + i, off:off + n] = True
            a = i
            while a >= 0:
                allow[b, off + n + i, off + n + a] = True
                a = parent[a]
        allow[b, :off, :off] = torch.eye(off, dtype=torch.bool)  # padding sees itself only (no empty rows)
        rows.append([[off + n - 1] + [off + n + i for i in path] for path in paths] or [[off + n - 1]])
    mask = torch.zeros(allow.shape, dtype=torch.float32).masked_fill(~allow, torch.finfo(torch.float32).min)
    return ids, mask[:, None], pos, rows


def tree_distributions(model: Any, trees: list[tuple[Any, list[list[int]]]], temperature: float = 1.0,
                       processor: Callable[[Any, Any], Any] | None = None) -> list[list[np.ndarray]]:
    """For each tree and chain, the ``(k + 1, V)`` next-token distributions along the chain (as
    :func:`~edgeplan.validation.serving.speculative.distributions` of the chain's own sequence gives them), from one
    forward pass of ``model`` over the batch of trees with tree attention (:func:`tree_inputs`). A tree without
    chains gives one distribution, after its context.

    Parameters
    ----------
    model
        A ``transformers`` causal LM that takes a 4-D additive attention mask (GPT-2 with eager attention does).
    trees
        ``(context ids, chains)`` per request.
    temperature, processor
        As in :func:`~edgeplan.validation.serving.speculative.distributions`.
    """
    import torch

    ids, mask, pos, rows = tree_inputs(trees)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.double()
    out = []
    for b, ((ctx, chains), per_chain) in enumerate(zip(trees, rows, strict=True)):
        dists = []
        for c, rr in enumerate(per_chain):
            lg = logits[b, rr]
            if processor is not None:
                seq = torch.as_tensor(np.concatenate([np.asarray(ctx), chains[c] if chains else []]),
                                      dtype=torch.long)
                lg = processor(seq[None].expand(len(rr), -1), lg)
            if temperature == 0:
                one = torch.zeros_like(lg)
                one[torch.arange(len(rr)), lg.argmax(-1)] = 1.0
                dists.append(one.numpy())
            else:
                dists.append(torch.softmax(lg / temperature, dim=-1).numpy())
        out.append(dists)
    return out


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

    if k < 1 or max_new < 1 or not drafters:
        raise ProblemDataError(f"`k` = {k}, `max_new` = {max_new}, {len(drafters)} drafters; expected k, max_new and "
                               "the drafters >= 1")
    rng = np.random.default_rng(0) if rng is None else rng

    def step(ids: Any, kk: int) -> tuple[list[int], int, int]:
        chains, qs = _draft_chains(drafters, ids, kk, temperature, processor, rng)
        p = tree_distributions(target, [(ids.numpy(), chains)], temperature, processor)[0]
        acc, token = verify_tree(p, chains, qs, temperature, rng)
        return acc, token, kk * len(drafters)

    return decode_loop(prompt, max_new, k, step)


def fused_proposal(qs: list[np.ndarray]) -> np.ndarray:
    """``(V,)`` the law of the fused token when drafter ``j`` draws from ``qs[j]`` and the most confident draw
    is kept, ties to the lowest index (module docstring).

    Parameters
    ----------
    qs
        Per drafter, its ``(V,)`` next-token distribution.
    """
    out = np.zeros_like(np.asarray(qs[0], dtype=float))
    ranked = []
    for q in qs:
        q = np.asarray(q, dtype=float)
        order = np.sort(q)
        ranked.append((order, np.concatenate([[0.0], np.cumsum(order)])))
    for j, qj in enumerate(qs):
        qj = np.asarray(qj, dtype=float)
        win = qj.copy()
        for i, (order, cum) in enumerate(ranked):
            if i != j:  # P(q_i(X_i) < c) for i < j, P(q_i(X_i) <= c) for i > j
                win *= cum[np.searchsorted(order, qj, side="left" if i < j else "right")]
        out += win
    return out


def fused_generate(target: Any, drafters: list[Any], prompt: Any, max_new: int, k: int, *,
                   temperature: float = 0.0, processor: Callable[[Any, Any], Any] | None = None,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, DecodeStats]:
    """Generation with CoSine's confidence-based fusion of the drafters' tokens (module docstring).

    Parameters
    ----------
    target, drafters
        The target and the drafters whose tokens are fused.
    prompt
        1-D token ids.
    max_new, k
        Tokens to generate and fused draft tokens per step.
    temperature
        0: greedy; else sampling at this temperature, verified against the fused law.
    processor
        A ``transformers`` logits processor for every model.
    rng
        Draws of drafts and acceptances.
    """
    import torch

    rng = np.random.default_rng(0) if rng is None else rng

    def step(ids: Any, kk: int) -> tuple[list[int], int, int]:
        seq, fused = ids, []
        for _ in range(kk):
            # greedy: confidences are the drafters' probabilities at temperature 1
            dists = [distributions(d, seq, 1, temperature or 1.0, processor)[0] for d in drafters]
            if temperature == 0:
                best = max(range(len(drafters)), key=lambda j: float(dists[j].max()))
                x = int(np.argmax(dists[best]))
            else:
                xs = [_draw(q, temperature, rng) for q in dists]
                confidence = [q[xj] for q, xj in zip(dists, xs, strict=True)]
                x = xs[int(np.argmax(confidence))]  # the first of the most confident
                fused.append(fused_proposal(dists))
            seq = torch.cat([seq, torch.tensor([x])])
        draft = seq[ids.numel():].tolist()
        p = distributions(target, seq, kk + 1, temperature, processor)
        acc, token = verify_tree([p], [draft], [fused], temperature, rng)
        return acc, token, kk

    return decode_loop(prompt, max_new, k, step)


__all__ = ["fused_generate", "fused_proposal", "token_tree", "tree_distributions", "tree_generate", "tree_inputs"]
