"""What the serving heuristics share: adding requests to a batch in a given order while the step stays feasible."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing


class BatchBuilder:
    """A batch grown request by request; :meth:`add` keeps it only if every cap still holds.

    Parameters
    ----------
    problem
        The step.
    token_cap
        Whether the verifiable-token cap applies (``cosine`` selects without it and shortens afterwards).
    """

    def __init__(self, problem: SpeculativeServing, *, token_cap: bool = True) -> None:
        self.p = problem
        self.routes: list[tuple[int, ...] | None] = [None] * problem.n_requests
        self.lengths = np.zeros(problem.n_requests, dtype=np.int64)
        # plain lists: a step has at most a few dozen drafters and rounds, and numpy's per-call cost dominated
        self.load = [0.0] * problem.n_drafters
        self.drafting = [[0.0] * problem.max_speculation for _ in range(problem.n_drafters)]  # m_ji
        self.round_s = [0.0] * problem.max_speculation  # each round's slowest drafter (0: no round)
        self.kbar = 0  # rounds drafted
        self.batch = 0
        self.tokens = 0.0
        self.context = 0.0
        self.a, self.b = problem.draft_base_s.tolist(), problem.draft_per_request_s.tolist()
        self.v = problem.verify_s.tolist()
        caps = np.array([problem.max_verify_tokens if token_cap else np.inf, problem.verifier_memory_bytes,
                         problem.step_bound_s])
        self.room = np.where(np.isfinite(caps), caps + slack_tol(caps, FEAS_TOL), np.inf).tolist()  # check's test
        cap = problem.draft_capacity
        self.cap = (cap + slack_tol(cap, FEAS_TOL)).tolist()

    def _step_s(self, draft: float, tokens: float, context: float) -> float:
        """The step time with one more request: ``draft`` plus the verification of ``tokens`` and ``context``."""
        v0, v1, v2, v3 = self.v
        return draft + v0 + v1 * (self.batch + 1) + v2 * tokens + v3 * context

    def fits(self, r: int, route: tuple[int, ...], k: int) -> bool:
        """Whether request ``r`` with drafters ``route`` and ``k`` draft tokens can join the batch."""
        p = self.p
        if k > p.max_speculation or len(route) > p.max_drafters or any(self.load[j] + 1 > self.cap[j] for j in route):
            return False
        rounds = list(self.round_s)
        for j in route:  # only this drafter's rounds 1..k change
            a, b, m = self.a[j], self.b[j], self.drafting[j]
            for i in range(k):
                rounds[i] = max(rounds[i], a + b * (m[i] + 1.0))
        draft = sum(rounds) + p.hop_s * max(self.kbar, k if route else 0)
        tokens = self.tokens + 1 + k * len(route)
        context = self.context + float(p.context_tokens[r])
        step = self._step_s(draft, tokens, context)
        memory = p.kv_bytes_per_token * (context + tokens)  # sum over the batch of n_r + 1 + k_r |S_r|
        room = self.room
        return tokens <= room[0] and memory <= room[1] and step <= room[2]

    def closed(self, context: float) -> bool:
        """Whether no request of at least ``context`` context tokens can join any more, even without drafters
        (every later :meth:`add` would fail: the batch only grows)."""
        p = self.p
        tokens = self.tokens + 1
        ctx = self.context + context
        step = self._step_s(sum(self.round_s) + p.hop_s * self.kbar, tokens, ctx)
        return tokens > self.room[0] or p.kv_bytes_per_token * (ctx + tokens) > self.room[1] or step > self.room[2]

    def add(self, r: int, route: Iterable[int], k: int) -> bool:
        """Add request ``r`` if it fits; returns whether it was added."""
        route = tuple(sorted(route)) if k > 0 else ()
        k = k if route else 0
        if self.routes[r] is not None or not self.fits(r, route, k):
            return False
        self.routes[r] = route
        self.lengths[r] = k
        for j in route:
            self.load[j] += 1
            m = self.drafting[j]
            for i in range(k):
                m[i] += 1.0
                self.round_s[i] = max(self.round_s[i], self.a[j] + self.b[j] * m[i])
        self.kbar = max(self.kbar, k)
        self.batch += 1
        self.tokens += 1 + k * len(route)
        self.context += float(self.p.context_tokens[r])
        return True

    def plan(self) -> ServingPlan:
        return ServingPlan(list(self.routes), self.lengths.copy())


def add_in_order(problem: SpeculativeServing, order: Iterable[int], route_of: dict[int, tuple[int, ...]],
                 length: int, *, stop_at_first: bool = False) -> ServingPlan:
    """Urgent requests first, then ``order``; each with its route and ``length`` draft tokens, else without a
    draft, else left out (``stop_at_first``: the first request that fits in neither way ends the batch)."""
    b = BatchBuilder(problem)
    urgent = np.flatnonzero(problem.urgent).tolist()
    least = float(problem.context_tokens.min(initial=0.0))
    for r in [*urgent, *(r for r in order if not problem.urgent[r])]:
        if b.closed(least):
            break
        route = route_of.get(r, ())
        if not b.add(r, route, length if route else 0) and not b.add(r, (), 0) and stop_at_first:
            break
    return b.plan()


__all__ = ["BatchBuilder", "add_in_order"]
