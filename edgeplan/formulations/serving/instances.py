r"""Seeded speculative-serving steps: ``"speculative-step"``.

Drafter :math:`j` specialises in domain :math:`j \bmod D` (acceptance U(0.70, 0.90) there, U(0.20, 0.45)
elsewhere); drafters beyond :math:`D` are general (U(0.50, 0.60) everywhere). A draft round takes
:math:`a_j \sim` U(4, 10) ms plus :math:`b_j \sim` U(0.2, 1) ms per request, for up to U{8..32} requests, with a
1 ms hop (CoSine's 100 Mbit/s drafter cluster). The verifier's time, memory and token cap are shaped like a
70B target on one server: 30 ms per batch, 0.5 ms per request, 0.3 ms per verified token, 2 µs per context
token; 320 KiB of K/V per token; 512 verifiable tokens. Contexts are U(256, 2048) tokens, and
``urgent_fraction`` of the requests must be batched, as many of them (in index order) as fit the verifier's
memory and token cap together, so that a drawn step always has a plan. The measured counterparts of these
numbers come from the real models of :mod:`edgeplan.validation.serving`.
"""

from __future__ import annotations

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.serving.step import SpeculativeServing
from edgeplan.registry import generator


def acceptance_table(n_drafters: int, n_domains: int, rng: np.random.Generator) -> np.ndarray:
    """``(J, D)`` acceptance rates: specialists on domain ``j % D``, general drafters beyond ``D``."""
    alpha = rng.uniform(0.20, 0.45, (n_drafters, n_domains))
    for j in range(n_drafters):
        if j < n_domains:
            alpha[j, j] = rng.uniform(0.70, 0.90)
        else:
            alpha[j] = rng.uniform(0.50, 0.60, n_domains)
    return alpha


@generator("speculative-step",
           cells=lambda n_requests, n_drafters, max_speculation=8, max_drafters=1, **_:
           n_requests * (1 + n_drafters ** max_drafters) * (max_speculation + 1) * 4,
           tiny=({"n_requests": 3, "n_drafters": 2, "n_domains": 2, "max_speculation": 2},
                 {"n_requests": 2, "n_drafters": 2, "n_domains": 2, "max_speculation": 2, "max_drafters": 2},
                 {"n_requests": 3, "n_drafters": 1, "n_domains": 2, "max_speculation": 3, "max_verify_tokens": 5,
                  "urgent_fraction": 0.5}),
           demo=("CoSine: one speculative-serving step (routing, batch, speculation length)",
                 {"n_requests": 64, "n_drafters": 8, "n_domains": 4},
                 ("step-milp", "cosine", "fcfs-fixed", "single-drafter", "random-routing", "autoregressive")))
def speculative_step_instance(n_requests: int = 64, n_drafters: int = 8, n_domains: int = 4, *, seed: int = 0,
                              max_speculation: int = 8, max_drafters: int = 1, max_verify_tokens: float = 512,
                              memory_gib: float = 20.0, urgent_fraction: float = 0.1,
                              step_bound_s: float = float("inf")) -> SpeculativeServing:
    """A step of pending requests and drafters as in the module docstring.

    Parameters
    ----------
    n_requests, n_drafters, n_domains
        :math:`R`, :math:`J` and the number of domains.
    seed
        The seed of every draw.
    max_speculation, max_drafters, max_verify_tokens, step_bound_s
        :math:`K`, :math:`s`, :math:`N_{max}` and :math:`L` of :class:`SpeculativeServing`.
    memory_gib
        The verifier's free K/V memory.
    urgent_fraction
        The expected share of urgent requests.
    """
    for key, v in (("n_requests", n_requests), ("n_drafters", n_drafters), ("n_domains", n_domains)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ProblemDataError(f"`{key}` = {v!r}; expected a whole number >= 1")
    if not 0.0 <= urgent_fraction <= 1.0:
        raise ProblemDataError(f"`urgent_fraction` = {urgent_fraction!r}; expected a value in [0, 1]")
    rng = np.random.default_rng(seed)
    alpha = acceptance_table(n_drafters, n_domains, rng)
    ctx = rng.integers(256, 2049, n_requests).astype(float)
    verify = np.array([0.030, 0.0005, 0.0003, 2e-6])
    memory = memory_gib * 2**30
    kv = 320 * 1024.0
    dom, cap = rng.integers(0, n_domains, n_requests), rng.integers(8, 33, n_drafters).astype(float)
    a, b = rng.uniform(0.004, 0.010, n_drafters), rng.uniform(0.0002, 0.001, n_drafters)
    weight = 1.0 + rng.exponential(0.5, n_requests)
    urgent = rng.random(n_requests) < urgent_fraction
    # urgent requests in index order while their contexts' K/V and one token each fit the verifier
    fits = (np.cumsum(np.where(urgent, kv * (ctx + 1.0), 0.0)) <= memory) & (np.cumsum(urgent) <= max_verify_tokens)
    urgent &= fits
    return SpeculativeServing(
        domain=dom, context_tokens=ctx, acceptance=alpha, draft_capacity=cap, draft_base_s=a, draft_per_request_s=b,
        verify_s=verify, max_verify_tokens=max_verify_tokens, kv_bytes_per_token=kv, verifier_memory_bytes=memory,
        max_speculation=max_speculation, max_drafters=max_drafters, weight=weight, urgent=urgent, hop_s=0.001,
        token_value_s=float(verify[:3].sum() + verify[3] * ctx.mean()), step_bound_s=step_bound_s,
        name=f"speculative-step-{n_requests}x{n_drafters}")
