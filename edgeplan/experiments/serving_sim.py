r"""A discrete-event simulator of speculative serving: a request stream, a scheduling policy per step, and the
acceptance and timing model of :class:`~edgeplan.formulations.serving.step.SpeculativeServing`.

Requests arrive as a Poisson stream (or a given trace) with a domain, a prompt and an output length. At each
step the pending requests form a :class:`SpeculativeServing` step (context = prompt + generated tokens; weight
:math:`1 + \text{waited}/\text{SLO}`; urgent once they have waited ``urgent_after`` SLOs) that a policy (any
method name of :func:`edgeplan.solve`) plans. The step then takes its model time :math:`\tau`, and each batched
request commits :math:`1 + A` tokens, :math:`A` the accepted drafts, drawn as i.i.d. acceptances with
:math:`\alpha_{S d}` until the first rejection or :math:`k_r` (the step model's own law). ``cosine`` runs with
CoSine's adaptive speculation control (:class:`CoSineController`). The report: latency percentiles, throughput,
verifier idle share and drafter utilisation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.serving.step import SpeculativeServing


@dataclass(frozen=True)
class Stream:
    """A request stream.

    Parameters
    ----------
    arrival_s, domain, prompt_tokens, output_tokens
        ``(n,)`` per request, arrivals sorted.
    """

    arrival_s: np.ndarray
    domain: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    @classmethod
    def poisson(cls, n: int, rate_per_s: float, n_domains: int, *, prompt: int = 256, output: int = 128,
                seed: int = 0) -> Stream:
        """``n`` requests at ``rate_per_s`` (Poisson), uniform domains, fixed prompt and output lengths (the
        paper's workload: 256 in, 128 out)."""
        if n < 1 or rate_per_s <= 0:
            raise ProblemDataError(f"`n` = {n}, `rate_per_s` = {rate_per_s}; expected n >= 1 and a positive rate")
        rng = np.random.default_rng(seed)
        return cls(np.cumsum(rng.exponential(1.0 / rate_per_s, n)), rng.integers(0, n_domains, n),
                   np.full(n, prompt), np.full(n, output))


@dataclass
class CoSineController:
    """CoSine's adaptive speculation control (negative feedback): the speculation length rises by one while the
    verifier has spare room (every pending request batched) and falls by one while requests queue, within
    ``[1, max_length]``.

    Attributes
    ----------
    max_length
        The step's :math:`K`.
    length
        The current speculation length.
    """

    max_length: int = 8
    length: int = 4

    def update(self, pending: int, batched: int) -> int:
        self.length = min(self.length + 1, self.max_length) if batched >= pending else max(self.length - 1, 1)
        return self.length


@dataclass(frozen=True)
class SimReport:
    """What a simulated run measured.

    Attributes
    ----------
    latency_s
        ``(n,)`` end-to-end latency of every finished request.
    makespan_s, tokens, steps
        Time to finish the stream, tokens generated, scheduling steps.
    verifier_idle
        Share of the makespan the verifier was not verifying.
    drafter_busy
        ``(J,)`` share of the makespan each drafter was drafting (each step counted at its first-round load for
        its longest draft: an upper estimate).
    """

    latency_s: np.ndarray
    makespan_s: float
    tokens: int
    steps: int
    verifier_idle: float
    drafter_busy: np.ndarray

    @property
    def throughput(self) -> float:
        """Tokens per second over the makespan."""
        return self.tokens / self.makespan_s if self.makespan_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q))


def simulate(template: SpeculativeServing, stream: Stream, policy: str = "cosine", *, slo_s: float = 10.0,
             urgent_after: float = 1.0, time_limit: float | None = None, seed: int = 0,
             max_pending: int = 512) -> SimReport:
    """Serve ``stream`` with ``policy`` on the drafters and verifier of ``template`` (its first request's data
    are replaced step by step; see the module docstring).

    Parameters
    ----------
    template
        A step whose drafters, verifier, caps and :math:`\\theta, \\omega` the run uses.
    policy
        A method name of :func:`edgeplan.solve` (``"cosine"`` adds :class:`CoSineController`).
    slo_s, urgent_after
        The latency objective behind the weights, and when a request becomes urgent (in SLOs).
    time_limit
        Per step, for exact policies.
    max_pending
        Requests admitted to a step at most (the oldest first).
    """
    from edgeplan.solvers.api import solve

    rng = np.random.default_rng(seed)
    n = stream.arrival_s.size
    done = np.zeros(n, dtype=np.int64)
    finish = np.full(n, np.nan)
    ctrl = CoSineController(max_length=template.max_speculation) if policy == "cosine" else None
    t, nxt, steps, verify_busy = 0.0, 0, 0, 0.0
    busy = np.zeros(template.n_drafters)
    live: list[int] = []
    while nxt < n or live:
        while nxt < n and stream.arrival_s[nxt] <= t:
            live.append(nxt)
            nxt += 1
        if not live:
            t = float(stream.arrival_s[nxt])
            continue
        ids = np.array(live[:max_pending])
        waited = t - stream.arrival_s[ids]
        step = dataclasses.replace(
            template, domain=stream.domain[ids], context_tokens=(stream.prompt_tokens[ids] + done[ids]).astype(float),
            weight=1.0 + waited / slo_s, urgent=waited >= urgent_after * slo_s,
            max_speculation=ctrl.length if ctrl else template.max_speculation)
        res = solve(step, policy, time_limit=time_limit, seed=int(rng.integers(1 << 31)))
        if not res.has_plan:  # urgent requests the step cannot hold: serve without the urgency
            res = solve(dataclasses.replace(step, urgent=None), policy, time_limit=time_limit)
        plan = res.require_plan()
        m = step.evaluate(plan)
        t += m.step_s
        verify_busy += m.verify_s
        for j in range(template.n_drafters):
            per = template.draft_base_s[j] + template.draft_per_request_s[j] * m.load[j]
            busy[j] += per * int(max((plan.lengths[r] for r, s in enumerate(plan.routes) if s and j in s), default=0))
        for i, (r, s) in enumerate(zip(ids.tolist(), plan.routes, strict=True)):
            if s is None:
                continue
            k = int(plan.lengths[i])
            acc = int(np.argmin(np.append(rng.random(k) < m.acceptance[i], False))) if k else 0
            done[r] = min(done[r] + acc + 1, stream.output_tokens[r])
            if done[r] >= stream.output_tokens[r]:
                finish[r] = t
        live = [r for r in live if np.isnan(finish[r])]
        steps += 1
        if ctrl is not None:
            ctrl.update(len(ids), len(plan.batch))
    makespan = float(np.nanmax(finish) - stream.arrival_s[0]) if n else 0.0
    return SimReport(latency_s=finish - stream.arrival_s, makespan_s=makespan, tokens=int(done.sum()), steps=steps,
                     verifier_idle=1.0 - verify_busy / makespan if makespan else 0.0,
                     drafter_busy=busy / makespan if makespan else busy)


__all__ = ["CoSineController", "SimReport", "Stream", "simulate"]
