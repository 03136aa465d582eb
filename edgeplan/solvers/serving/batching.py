"""What the serving heuristics share: adding requests to a batch in a given order while the step stays feasible."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, within
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing


class BatchBuilder:
    """A batch grown request by request; :meth:`add` keeps it only if every cap still holds."""

    def __init__(self, problem: SpeculativeServing) -> None:
        self.p = problem
        self.routes: list[tuple[int, ...] | None] = [None] * problem.n_requests
        self.lengths = np.zeros(problem.n_requests, dtype=np.int64)
        self.load = np.zeros(problem.n_drafters)
        self.drafting = np.zeros((problem.n_drafters, problem.max_speculation))  # m_ji
        self.batch = 0
        self.tokens = 0.0
        self.context = 0.0

    def _step(self, drafting: np.ndarray, batch: int, tokens: float, context: float) -> float:
        p = self.p
        per = np.where(drafting > 0, p.draft_base_s[:, None] + p.draft_per_request_s[:, None] * drafting, -np.inf)
        rounds = per.max(axis=0, initial=-np.inf)
        draft = float((p.hop_s + rounds[np.isfinite(rounds)]).sum())
        v0, v1, v2, v3 = p.verify_s.tolist()
        return draft + (v0 + v1 * batch + v2 * tokens + v3 * context if batch else 0.0)

    def fits(self, r: int, route: tuple[int, ...], k: int) -> bool:
        """Whether request ``r`` with drafters ``route`` and ``k`` draft tokens can join the batch."""
        p = self.p
        if k > p.max_speculation or len(route) > p.max_drafters:
            return False
        load = self.load.copy()
        load[list(route)] += 1
        drafting = self.drafting.copy()
        drafting[list(route), :k] += 1
        tokens = self.tokens + 1 + k * len(route)
        context = self.context + float(p.context_tokens[r])
        step = self._step(drafting, self.batch + 1, tokens, context)
        memory = p.kv_bytes_per_token * (context + tokens)  # sum over the batch of n_r + 1 + k_r |S_r|
        return bool(within([*load, tokens, memory, step], [*p.draft_capacity, p.max_verify_tokens,
                                                           p.verifier_memory_bytes, p.step_bound_s], FEAS_TOL).all())

    def add(self, r: int, route: Iterable[int], k: int) -> bool:
        """Add request ``r`` if it fits; returns whether it was added."""
        route = tuple(sorted(route)) if k > 0 else ()
        k = k if route else 0
        if self.routes[r] is not None or not self.fits(r, route, k):
            return False
        self.routes[r] = route
        self.lengths[r] = k
        self.load[list(route)] += 1
        self.drafting[list(route), :k] += 1
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
    for r in [*urgent, *(r for r in order if not problem.urgent[r])]:
        route = route_of.get(r, ())
        if not b.add(r, route, length if route else 0) and not b.add(r, (), 0) and stop_at_first:
            break
    return b.plan()


__all__ = ["BatchBuilder", "add_in_order"]
