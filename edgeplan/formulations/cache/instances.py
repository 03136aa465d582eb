"""CoCa data helpers: class importance from a request history, and seeded synthetic instances.

:func:`class_importance` is CoCa's frequency x recency importance [author code; ``docs/models/cache.md``
section 3]; :func:`random_cache_problem` and :func:`random_replay_problem` draw tiny to mid-sized
:class:`~edgeplan.formulations.cache.placement.CachePlacement` and
:class:`~edgeplan.formulations.cache.replay.CacheReplay` instances for tests and benchmarks (their ranges
are ours, stated in each docstring).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.placement import CachePlacement
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.registry import generator


def class_importance(history: Any, n_classes: int, *, alpha: float = 0.5, window: int = 60) -> np.ndarray:
    r"""CoCa's class importance :math:`I_c = f_c\,\alpha^{\lfloor \Delta t_c / W \rfloor}` from a label history.

    ``history`` holds class ids, oldest first; :math:`f_c` counts them and :math:`\Delta t_c` is the number
    of requests since class :math:`c` last occurred (:math:`I_c = 0` if it never did). The 2025 author code
    uses :math:`\alpha = 0.5` with a window of 20 steps of 60 requests, the 2023 code 0.25 and 60.
    """
    h = as_array("history", history, shape=(None,), dtype=int, min_value=0, max_value=n_classes - 1)
    alpha = as_scalar("alpha", alpha, min_value=0.0, max_value=1.0)
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ProblemDataError(f"`window` = {window!r}; expected a positive integer")
    f = np.bincount(h, minlength=n_classes).astype(float)
    last = np.full(n_classes, -1)
    last[h] = np.arange(h.size)  # later indices overwrite: the last occurrence
    dt = h.size - 1 - last
    return np.where(f > 0, f * alpha ** (dt // window), 0.0)


def importance_to_prob(importance: np.ndarray) -> np.ndarray:
    """Normalise importances to request probabilities (uniform where a row is all zero)."""
    imp = np.atleast_2d(np.asarray(importance, dtype=float))
    tot = imp.sum(axis=1, keepdims=True)
    out = np.where(tot > 0, imp / np.where(tot > 0, tot, 1.0), 1.0 / imp.shape[1])
    return out if np.ndim(importance) == 2 else out[0]


@generator("cache", cells=lambda n_clients, n_layers, n_classes, **_: n_clients * (n_classes + 1) * (n_layers + 2) ** 2,
           tiny=(
    {"n_clients": 2, "n_layers": 4, "n_classes": 4},
    {"n_clients": 1, "n_layers": 4, "n_classes": 4, "goal": "accuracy", "memory_budget_bytes": 2e3},
    {"n_clients": 2, "n_layers": 3, "n_classes": 3, "max_layers": 1, "latency_slo_fraction": 0.9}),
    demo=("CoCa cache placement", {"n_clients": 3, "n_layers": 8, "n_classes": 10},
          ("cache-dp", "aca", "static-topk", "no-cache")))
def random_cache_problem(n_clients: int = 3, n_layers: int = 8, n_classes: int = 10, *, seed: int = 0,
                         goal: str = "latency", accuracy_drop: float = 0.03, entry_budget: float | None = None,
                         memory_budget_bytes: float = np.inf, max_layers: int | None = None,
                         zipf: float = 1.1, latency_slo_fraction: float = np.inf) -> CachePlacement:
    """A seeded synthetic :class:`CachePlacement` with the structure of a CoCa deployment.

    Our ranges (not the paper's): block times 0.5-2 ms scaled by a client speed in [0.5, 2]; dimensions
    doubling from 64 over the depth; lookup 20-60 us fixed plus 2-10 ns per vector component per entry;
    Zipf(``zipf``) requests over a client-specific class order; recognition depth of a cached class
    logistic in the depth with a class-specific midpoint and ceiling, shrinking with :math:`k`; false hits
    of uncached classes up to 10 %, always wrong; precision of true hits 0.85-1 rising with the depth.
    ``accuracy_floor`` is ``1 - accuracy_drop``; ``entry_budget`` defaults to ``C * L / 3``;
    ``latency_slo_fraction`` sets :math:`\\bar T_i` to that fraction of the full latency.
    """
    rng = np.random.default_rng(seed)
    n, L, C = n_clients, n_layers, n_classes
    speed = rng.uniform(0.5, 2.0, size=(n, 1))
    t = np.concatenate([rng.uniform(0.5e-3, 2e-3, size=(1, L)), rng.uniform(0.1e-3, 0.5e-3, size=(1, 1))], 1)
    block = t * speed
    dims = 64 * 2 ** np.floor(4 * np.arange(L) / L)
    g = rng.uniform(20e-6, 60e-6, size=(1, L)) * speed
    kappa = dims[None, :] * rng.uniform(2e-9, 10e-9, size=(1, L)) * speed
    order = np.array([rng.permutation(C) for _ in range(n)])
    p = np.zeros((n, C))
    np.put_along_axis(p, order, (1.0 / np.arange(1, C + 1) ** zipf)[None, :].repeat(n, 0), axis=1)
    p /= p.sum(axis=1, keepdims=True)
    rank = np.argsort(-p, axis=1, kind="stable")
    depth = (np.arange(L) + 1) / L
    mid, ceil = rng.uniform(0.2, 0.8, size=C), rng.uniform(0.5, 0.95, size=C)
    cdf_in = ceil[None, :] / (1 + np.exp(-(depth[:, None] - mid[None, :]) / 0.12))  # (L, C)
    cdf_out = rng.uniform(0.0, 0.1, size=C)[None, :] / (1 + np.exp(-(depth[:, None] - 0.5) / 0.15))
    ks = np.arange(C + 1)
    shrink = 1.0 - 0.3 * np.clip(ks - 1, 0, None) / max(C - 1, 1)  # (k,)
    cached = np.zeros((n, C + 1, C), dtype=bool)  # class c among the top-k of client i
    pos = np.argsort(rank, axis=1)  # position of class c in client i's rank
    cached[:] = pos[:, None, :] < ks[None, :, None]
    cdf = np.where(cached[:, :, None, :], shrink[None, :, None, None] * cdf_in[None, None], cdf_out[None, None])
    cdf[:, :2] = 0.0  # k < 2: the relative-margin rule never hits
    r = np.diff(cdf, axis=2, prepend=0.0).clip(0.0, None)
    prec_in = np.clip(0.85 + 0.15 * depth[:, None] - 0.05 * rng.uniform(0, 1, size=(1, C)), 0.0, 1.0)
    prec = np.where(cached[:, :, None, :], prec_in[None, None], 0.0)
    budget = C * L / 3 if entry_budget is None else entry_budget
    slo = block.sum(axis=1) * latency_slo_fraction if np.isfinite(latency_slo_fraction) else np.inf
    return CachePlacement(block_time_s=block, lookup_fixed_s=g, lookup_entry_s=kappa, dims=dims, request_prob=p,
                          class_rank=rank, hit_prob=r, hit_precision=prec, max_entries=budget,
                          max_memory_bytes=memory_budget_bytes, max_layers=max_layers,
                          accuracy_floor=1.0 - accuracy_drop, latency_slo_s=slo, goal=goal,
                          name=f"cache-rand-{n}x{L}x{C}-s{seed}")


@generator("cache-replay", cells=lambda n_clients, n_layers, n_classes, requests, **_:
           n_clients * (n_classes + 1) * (n_layers + 2) * (n_layers + requests + 2),
           tiny=({"n_clients": 1, "n_layers": 4, "n_classes": 4, "requests": 20},))
def random_replay_problem(n_clients: int = 2, n_layers: int = 5, n_classes: int = 6, *, requests: int = 60,
                          seed: int = 0, noise: float = 0.6, rule: str = "coca", threshold: float = 0.05,
                          accuracy_drop: float = 0.05, **system: Any) -> CacheReplay:
    """A seeded synthetic :class:`CacheReplay` for tests and benchmarks (our ranges, not the paper's).

    Class centres are random unit vectors per layer; a request of class :math:`c` has
    :math:`u_l = \\mathrm{normalize}(G[l][c] + \\sigma_l \\varepsilon)` with noise :math:`\\sigma_l` falling from
    ``noise * 2`` to ``noise / 2`` over the depth (deeper layers separate better). Clients draw classes from
    Zipf(1.1) over their own class order; the reference is the nearest centre at the last layer.
    """
    rng = np.random.default_rng(seed)
    n, L, C = n_clients, n_layers, n_classes
    dims = (16 * 2 ** np.floor(3 * np.arange(L) / L)).astype(int)
    order = np.array([rng.permutation(C) for _ in range(n)])
    zipf = 1.0 / np.arange(1, C + 1) ** 1.1
    client = np.repeat(np.arange(n), requests)
    truth = np.concatenate([order[i][rng.choice(C, size=requests, p=zipf / zipf.sum())] for i in range(n)])
    sigma = noise * np.geomspace(2.0, 0.5, L)
    scores = np.zeros((L, client.size, C))
    for l in range(L):
        G = rng.normal(size=(C, dims[l]))
        G /= np.linalg.norm(G, axis=1, keepdims=True)
        u = G[truth] + sigma[l] * rng.normal(size=(client.size, dims[l])) / np.sqrt(dims[l])
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        scores[l] = u @ G.T
    reference = scores[-1].argmax(axis=1)
    speed = rng.uniform(0.5, 2.0, size=(n, 1))
    block = np.concatenate([rng.uniform(0.5e-3, 2e-3, size=(1, L)), rng.uniform(0.1e-3, 0.5e-3, size=(1, 1))],
                           1) * speed
    kw: dict[str, Any] = dict(max_entries=C * L / 3, accuracy_floor=1.0 - accuracy_drop)
    kw.update(system)
    return CacheReplay(block_time_s=block, lookup_fixed_s=rng.uniform(20e-6, 60e-6, size=(n, L)),
                       lookup_entry_s=dims[None, :] * rng.uniform(2e-9, 10e-9, size=(n, L)), dims=dims,
                       scores=scores, client=client, reference=reference, rule=rule, threshold=threshold,
                       name=f"replay-rand-{n}x{L}x{C}-s{seed}", **kw)


__all__ = ["class_importance", "importance_to_prob", "random_cache_problem", "random_replay_problem"]
