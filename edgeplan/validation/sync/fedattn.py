r"""Federated attention for real: participants' prompt parts through a trained decoder, K/V exchanged at the
synced blocks, quality and bytes measured; the error model calibrated from these runs.

**Execution** (:func:`federated_forward`). Participant :math:`i` holds the prompt positions
:math:`[o_i, o_i + n_i)`. In a local block its queries attend (causally) to its own keys only; in a synced block
to every earlier position, its own and the K/V received from the participants before it. One forward pass with
a per-block attention mask computes exactly what the participants compute apart (each participant's hidden
states depend only on what it holds and what it received). The bytes are counted from the real K/V tensors
of each synced block (a hook on the block's ``c_attn``): participant :math:`i` uploads its own K/V when a later
participant has tokens and downloads the K/V of the positions before its own.

**Quality** (:func:`quality`): the mean per-token :math:`KL(p_{central} \,\|\, p_{fed})` of the next-token
distributions (the error the planning model budgets), the next-token loss, and the share of positions whose
greedy token equals centralised attention's.

**Error model** (:func:`calibrate`): :math:`E(\mathcal S) = \sum_{k \notin \mathcal S} e_{k,\gamma_k}` is fitted
by non-negative least squares to the measured KL of every schedule (or a sample of ``max_schedules``) on
calibration prompts; :func:`held_out` compares its predictions with the KL measured on other prompts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError


def split_tokens(length: int, n: int) -> np.ndarray:
    """``(n,)`` contiguous shares of a ``length``-token prompt, as equal as can be (earlier parts larger)."""
    if not 1 <= n <= length:
        raise ProblemDataError(f"`n_participants` = {n}; expected 1..{length} (the prompt's tokens)")
    return np.full(n, length // n) + (np.arange(n) < length % n)


def _owner(tokens: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(tokens.size), tokens.astype(int))


def masks(tokens: np.ndarray) -> tuple[Any, Any]:
    """Additive ``(1, 1, n, n)`` attention masks of a local and a synced (global) block."""
    import torch

    n = int(tokens.sum())
    own = torch.from_numpy(_owner(tokens))
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    local = causal & (own[:, None] == own[None, :])
    neg = torch.finfo(torch.float32).min
    as_add = lambda m: torch.zeros(n, n).masked_fill(~m, neg)[None, None]  # noqa: E731
    return as_add(local), as_add(causal)


@dataclass(frozen=True, slots=True)
class FedRun:
    """One federated forward pass.

    Attributes
    ----------
    logits
        ``(B, n, V)`` each participant's next-token logits at its positions.
    bytes_up, bytes_down
        K/V bytes uploaded and downloaded over all participants and synced blocks (from the tensors).
    """

    logits: Any
    bytes_up: int
    bytes_down: int


def federated_forward(model: Any, ids: Any, tokens: np.ndarray, synced: Any) -> FedRun:
    """The participants' forward pass with K/V exchanged at the ``synced`` blocks (module docstring)."""
    import torch

    tr = model.transformer
    n = int(tokens.sum())
    if ids.shape[1] != n:
        raise ProblemDataError(f"the prompts have {ids.shape[1]} tokens; the split `tokens` sums to {n}")
    L = len(tr.h)
    synced = set(int(b) for b in synced)
    if synced and (min(synced) < 0 or max(synced) >= L):
        raise ProblemDataError(f"`synced` = {sorted(synced)}; expected blocks in 0..{L - 1}")
    local, glob = masks(tokens)
    start = np.concatenate([[0], np.cumsum(tokens)])
    counted = {"up": 0, "down": 0}

    def count(_mod: Any, _inp: Any, out: Any) -> None:
        k, v = out.split(tr.embed_dim, dim=2)[1:]
        for i in range(tokens.size):
            a, b = int(start[i]), int(start[i + 1])
            if b < n and b > a:  # a later participant has tokens: it needs these
                counted["up"] += k[:, a:b].nbytes + v[:, a:b].nbytes
            counted["down"] += k[:, :a].nbytes + v[:, :a].nbytes if b > a else 0

    with torch.no_grad():
        h = tr.wte(ids) + tr.wpe(torch.arange(n))
        for l, block in enumerate(tr.h):
            handle = block.attn.c_attn.register_forward_hook(count) if l in synced else None
            out = block(h, attention_mask=glob if l in synced else local)
            h = out[0] if isinstance(out, tuple) else out
            if handle is not None:
                handle.remove()
        logits = model.lm_head(tr.ln_f(h))
    return FedRun(logits=logits, bytes_up=counted["up"], bytes_down=counted["down"])


def quality(model: Any, ids: Any, tokens: np.ndarray, synced: Any, central: Any = None) -> dict[str, float]:
    """KL to centralised attention (nats per token), next-token loss, greedy agreement and bytes of one
    schedule on prompts ``ids``; ``central`` reuses centralised logits."""
    import torch
    import torch.nn.functional as F

    run = federated_forward(model, ids, tokens, synced)
    if central is None:
        with torch.no_grad():
            central = model(ids).logits
    lp, lq = F.log_softmax(central, -1), F.log_softmax(run.logits, -1)
    kl = float((lp.exp() * (lp - lq)).sum(-1).mean())
    loss = float(F.cross_entropy(run.logits[:, :-1].reshape(-1, lq.shape[-1]), ids[:, 1:].reshape(-1)))
    agree = float((central.argmax(-1) == run.logits.argmax(-1)).float().mean())
    return {"kl": max(kl, 0.0), "loss": loss, "agreement": agree, "bytes_up": run.bytes_up,
            "bytes_down": run.bytes_down}


def gaps(synced: Any, n_blocks: int) -> np.ndarray:
    """``(L,)`` :math:`\\gamma_k`, blocks since the last sync (0 at a synced block)."""
    out, last = np.zeros(n_blocks, dtype=int), -1
    for k in range(n_blocks):
        if k in synced:
            last = k
        else:
            out[k] = k - last
    return out


def features(synced: Any, n_blocks: int) -> np.ndarray:
    """``(L*L,)`` indicator of the table entries :math:`e_{k,\\gamma}` a schedule's error sums."""
    x = np.zeros((n_blocks, n_blocks))
    g = gaps(set(synced), n_blocks)
    k = np.flatnonzero(g)
    x[k, g[k] - 1] = 1.0
    return x.ravel()


def schedules(n_blocks: int, max_schedules: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every subset of blocks, or ``max_schedules`` distinct random ones (empty and full included)."""
    if 2 ** n_blocks <= max_schedules:
        return [tuple(b for b, m in enumerate(mask) if m) for mask in itertools.product((0, 1), repeat=n_blocks)]
    picked = {(), tuple(range(n_blocks))}
    while len(picked) < max_schedules:
        picked.add(tuple(np.flatnonzero(rng.random(n_blocks) < rng.random()).tolist()))
    return sorted(picked)


def measure(model: Any, ids: Any, tokens: np.ndarray, plans: list[tuple[int, ...]]) -> np.ndarray:
    """``(len(plans),)`` measured KL of each schedule."""
    import torch

    with torch.no_grad():
        central = model(ids).logits
    return np.array([quality(model, ids, tokens, s, central)["kl"] for s in plans])


def calibrate(model: Any, ids: Any, tokens: np.ndarray, *, max_schedules: int = 96,
              seed: int = 0) -> tuple[np.ndarray, list[tuple[int, ...]], np.ndarray]:
    """The ``(L, L)`` error table fitted by NNLS (module docstring), the schedules used and their KL."""
    from scipy.optimize import nnls

    L = len(model.transformer.h)
    plans = schedules(L, max_schedules, np.random.default_rng(seed))
    y = measure(model, ids, tokens, plans)
    X = np.array([features(s, L) for s in plans])
    used = X.any(axis=0)
    coef = np.zeros(L * L)
    coef[used] = nnls(X[:, used], y)[0]
    # entries no schedule used (gaps a block cannot have) take the largest fitted gap of their block
    table = coef.reshape(L, L)
    for k in range(L):
        seen = np.flatnonzero(used.reshape(L, L)[k])
        if seen.size:
            table[k, seen[-1] + 1:] = table[k, seen[-1]]
    return table, plans, y


def held_out(model: Any, ids: Any, tokens: np.ndarray, table: np.ndarray,
             plans: list[tuple[int, ...]]) -> dict[str, Any]:
    """Predicted (from ``table``) against measured KL on prompts ``ids``: per schedule and summarised."""
    L = table.shape[0]
    meas = measure(model, ids, tokens, plans)
    pred = np.array([features(s, L) @ table.ravel() for s in plans])
    nz = meas > 1e-6
    rel = np.abs(pred[nz] - meas[nz]) / meas[nz]
    return {"plans": plans, "predicted": pred, "measured": meas,
            "median_rel_error": float(np.median(rel)) if rel.size else 0.0,
            "p90_rel_error": float(np.quantile(rel, 0.9)) if rel.size else 0.0,
            "r2": float(1 - ((pred - meas) ** 2).sum() / max(((meas - meas.mean()) ** 2).sum(), 1e-300))}


__all__ = ["FedRun", "calibrate", "features", "federated_forward", "gaps", "held_out", "masks", "measure",
           "quality", "schedules", "split_tokens"]
