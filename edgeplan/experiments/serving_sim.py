r"""A discrete-event simulator of speculative serving: a request stream, a scheduling policy per step, and the
acceptance and timing model of :class:`~edgeplan.formulations.serving.step.SpeculativeServing`.

Requests arrive as a Poisson stream (or a given trace) with a domain, a prompt and an output length. At each
step the pending requests form a :class:`SpeculativeServing` step (context = prompt + generated tokens; weight
:math:`1 + \text{waited}/\text{SLO}`; urgent once they have waited ``urgent_after`` SLOs) that a policy (any
method name of :func:`edgeplan.solve`) plans. The step then takes its model time :math:`\tau`, and each batched
request commits :math:`1 + A` tokens, :math:`A` the accepted drafts, drawn by the step model's own law (one
chain: i.i.d. acceptances until the first rejection or :math:`k_r`; a token tree: its first position through the
first chain that lands, then that chain's). ``cosine`` runs with CoSine's adaptive control of the speculation
length and drafters per request (:class:`CoSineController`). The report: latency percentiles, throughput,
verifier idle share and drafter utilisation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.experiments.serving_router import CoSineRouter
from edgeplan.formulations.serving.step import SpeculativeServing, first_landing


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
    """CoSine's adaptive speculation control (negative feedback): while the verifier has spare room (every
    pending request batched) the speculation length and the drafters per request each rise by one; while
    requests queue both fall by one, within ``[1, max_length]`` and ``[1, max_drafters]``.

    Attributes
    ----------
    max_length, max_drafters
        The template's :math:`K` and :math:`s` (the ceilings).
    length, drafters
        The current speculation length and drafters per request.
    """

    max_length: int = 8
    length: int = 4
    max_drafters: int = 1
    drafters: int = 1

    def update(self, pending: int, batched: int) -> int:
        step = 1 if batched >= pending else -1
        self.length = min(max(self.length + step, 1), self.max_length)
        self.drafters = min(max(self.drafters + step, 1), self.max_drafters)
        return self.length

    @classmethod
    def of(cls, template: SpeculativeServing, policy: str) -> CoSineController | None:
        """The controller ``policy`` runs with (``"cosine"`` only), at ``template``'s ceilings."""
        if policy != "cosine":
            return None
        return cls(max_length=template.max_speculation, length=min(4, template.max_speculation),
                   max_drafters=template.max_drafters)


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
    step_s, predicted_step_s
        ``(steps,)`` each step's duration, and the step model's :math:`\tau` of its plan (equal in a simulation;
        measured against predicted in a live run, the hub's planning included in the measured one).
    tokens_per_step, expected_per_step
        ``(steps,)`` tokens committed in each step, and the model's expectation :math:`\\sum_r E_r`.
    trace
        A live run's per-step measurements (empty for a simulation): ``plan_s``, ``draft_s``, ``verify_s`` (hub to
        hub), ``other_s`` (the rest of the step: messages, acceptance, bookkeeping), the model's
        ``predicted_draft_s``, and the step's ``batch`` :math:`B`, verified ``tokens`` :math:`N` and
        ``context`` :math:`\\sum n_r`; :func:`refit` fits the timing functions to them.
    """

    latency_s: np.ndarray
    makespan_s: float
    tokens: int
    steps: int
    verifier_idle: float
    drafter_busy: np.ndarray
    step_s: np.ndarray
    predicted_step_s: np.ndarray
    tokens_per_step: np.ndarray
    expected_per_step: np.ndarray
    trace: dict = dataclasses.field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Tokens per second over the makespan."""
        return self.tokens / self.makespan_s if self.makespan_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q))


def _step(template: SpeculativeServing, stream: Stream, ids: np.ndarray, done: np.ndarray, t: float, slo_s: float,
          urgent_after: float, ctrl: CoSineController | None) -> SpeculativeServing:
    """The step of the pending requests ``ids`` at time ``t`` (module docstring), at the controller's length
    and drafters per request."""
    waited = t - stream.arrival_s[ids]
    return dataclasses.replace(
        template, domain=stream.domain[ids], context_tokens=(stream.prompt_tokens[ids] + done[ids]).astype(float),
        weight=1.0 + waited / slo_s, urgent=waited >= urgent_after * slo_s,
        max_speculation=template.max_speculation if ctrl is None else ctrl.length,
        max_drafters=template.max_drafters if ctrl is None else ctrl.drafters)


def _plan(step: SpeculativeServing, policy: str, time_limit: float | None, rng: np.random.Generator,
          options: dict | None = None) -> Any:
    """The policy's plan of ``step``; without urgency if the urgent requests do not fit, and with the oldest
    request urgent if the policy batches nothing (an empty step would stop the clock)."""
    from edgeplan.solvers.api import solve

    res = solve(step, policy, time_limit=time_limit, seed=int(rng.integers(1 << 31)), options=options)
    if not res.has_plan:  # urgent requests the step cannot hold: serve without the urgency
        res = solve(dataclasses.replace(step, urgent=None), policy, time_limit=time_limit, options=options)
    if res.has_plan and not res.plan.batch.size:
        oldest = np.zeros(step.n_requests, dtype=bool)
        oldest[np.argmax(step.weight)] = True  # the weight grows with the time waited
        res = solve(dataclasses.replace(step, urgent=oldest), policy, time_limit=time_limit, options=options)
        if res.has_plan and not res.plan.batch.size:
            raise ProblemDataError(f"`policy` = {policy!r} batches no request even when one must be served; "
                                   "the run cannot progress")
    return res.require_plan()


def _accepted_drafts(step: SpeculativeServing, plan: Any, u: np.ndarray) -> np.ndarray:
    """Accepted drafts per request by the step model's law, from uniforms ``u`` ``(R, max k)``: the first position
    through the first chain (in the order tried) whose guess lands, with :math:`\\pi_j`; then that chain's
    i.i.d. acceptances until the first rejection or :math:`k_r`."""
    if not u.shape[1]:
        return np.zeros(u.shape[0], dtype=np.int64)
    chains = step.chain_acceptance(plan.routes)
    reach = np.cumsum(first_landing(chains), axis=1)  # P(the first position lands through one of the first j)
    pick = np.minimum((u[:, :1] >= reach).sum(axis=1), chains.shape[1] - 1)
    hits = np.concatenate([u[:, :1] < reach[:, -1:], u[:, 1:] < chains[np.arange(u.shape[0]), pick][:, None]], 1)
    return np.minimum(np.cumprod(hits, axis=1).sum(axis=1), plan.lengths)


def _report(stream: Stream, finish: np.ndarray, done: np.ndarray, verify_busy: float, busy: np.ndarray,
            log: list[tuple[float, float, int, float]], trace: dict | None = None) -> SimReport:
    makespan = float(np.nanmax(finish) - stream.arrival_s[0])
    a = np.array(log, dtype=float).reshape(-1, 4)
    return SimReport(latency_s=finish - stream.arrival_s, makespan_s=makespan, tokens=int(done.sum()),
                     steps=len(log), verifier_idle=1.0 - verify_busy / makespan if makespan else 0.0,
                     drafter_busy=busy / makespan if makespan else busy, step_s=a[:, 0], predicted_step_s=a[:, 1],
                     tokens_per_step=a[:, 2], expected_per_step=a[:, 3],
                     trace={k: np.array(v) for k, v in (trace or {}).items()})


def _router_options(router: CoSineRouter | None, policy: str, stream: Stream, ids: np.ndarray) -> dict | None:
    """The ``cosine`` options that carry ``router``'s scores for the pending ``ids``."""
    if router is None:
        return None
    if policy != "cosine":
        raise ProblemDataError(f"`router` given with `policy` = {policy!r}; expected policy 'cosine'")
    return {"scores": router.scores(ids, stream.domain[ids])}


def simulate(template: SpeculativeServing, stream: Stream, policy: str = "cosine", *, slo_s: float = 10.0,
             urgent_after: float = 1.0, time_limit: float | None = None, seed: int = 0,
             max_pending: int = 512, router: CoSineRouter | None = None) -> SimReport:
    """Serve ``stream`` with ``policy`` on the drafters and verifier of ``template`` (its request data are
    replaced step by step; see the module docstring).

    Parameters
    ----------
    template
        A step whose drafters, verifier, caps and :math:`\\theta, \\omega` the run uses.
    stream
        The requests.
    policy
        A method name of :func:`edgeplan.solve` (``"cosine"`` adds :class:`CoSineController`).
    slo_s, urgent_after
        The latency objective behind the weights, and when a request becomes urgent (in SLOs).
    time_limit
        Per step, for exact policies.
    seed
        Seeds the acceptance draws and randomised policies.
    max_pending
        Requests admitted to a step at most (the oldest first).
    router
        With ``"cosine"``: routing scores learned from the accepted drafts, with CoSine's exploration
        (:class:`~edgeplan.experiments.serving_router.CoSineRouter`); by default ``cosine`` routes by the
        acceptance profile.
    """
    rng = np.random.default_rng(seed)
    n = stream.arrival_s.size
    done = np.zeros(n, dtype=np.int64)
    finish = np.full(n, np.nan)
    ctrl = CoSineController.of(template, policy)
    t, nxt, verify_busy = float(stream.arrival_s[0]), 0, 0.0
    busy = np.zeros(template.n_drafters)
    live: list[int] = []
    log: list[tuple[float, float, int, float]] = []
    while nxt < n or live:
        while nxt < n and stream.arrival_s[nxt] <= t:
            live.append(nxt)
            nxt += 1
        if not live:
            t = float(stream.arrival_s[nxt])
            continue
        ids = np.array(live[:max_pending])
        step = _step(template, stream, ids, done, t, slo_s, urgent_after, ctrl)
        plan = _plan(step, policy, time_limit, rng, _router_options(router, policy, stream, ids))
        m = step.evaluate(plan)
        t += m.step_s
        verify_busy += m.verify_s
        longest = np.zeros(template.n_drafters)
        for s, k in zip(plan.routes, plan.lengths.tolist(), strict=True):
            if s:
                longest[list(s)] = np.maximum(longest[list(s)], k)
        busy += (template.draft_base_s + template.draft_per_request_s * m.load) * longest
        before = int(done.sum())
        K = int(plan.lengths.max(initial=0))
        accepted = _accepted_drafts(step, plan, rng.random((ids.size, K)))
        batched = plan.batch
        r_ids = ids[batched]
        if router is not None:
            router.observe(r_ids, stream.domain[r_ids], [plan.routes[i] for i in batched], plan.lengths[batched],
                           accepted[batched])
        done[r_ids] = np.minimum(done[r_ids] + accepted[batched] + 1, stream.output_tokens[r_ids])
        fin = r_ids[done[r_ids] >= stream.output_tokens[r_ids]]
        finish[fin] = t
        log.append((m.step_s, m.step_s, int(done.sum()) - before, float(m.expected_tokens.sum())))
        live = [r for r in live if np.isnan(finish[r])]
        if ctrl is not None:
            ctrl.update(len(ids), len(plan.batch))
    return _report(stream, finish, done, verify_busy, busy, log)


def serve_live(cluster: Any, template: SpeculativeServing, stream: Stream, policy: str = "cosine", *,
               slo_s: float = 10.0, urgent_after: float = 1.0, time_limit: float | None = None, seed: int = 0,
               max_pending: int = 512, router: CoSineRouter | None = None) -> SimReport:
    """Serve ``stream`` for real on a :class:`~edgeplan.validation.serving.live.LiveCluster`: the same policy
    and steps as :func:`simulate`, but wall-clock time, and tokens drafted, verified and accepted by the real
    models (prompts drawn from each request's domain of the cluster's corpus). The report's ``drafter_busy`` is
    not measured live (zeros).

    Parameters
    ----------
    cluster
        The running drafters and verifier.
    template, stream, policy, slo_s, urgent_after, time_limit, seed, max_pending, router
        As in :func:`simulate` (the template's acceptance and timings are not used: reality replaces them; a
        router learns from the drafts the real models accepted).
    """
    import time

    from edgeplan.validation.serving.live import execute_step

    rng = np.random.default_rng(seed)
    n = stream.arrival_s.size
    corpus = cluster.models.corpus
    seqs = [corpus.sample(1, int(stream.prompt_tokens[r]), rng, [int(stream.domain[r])])[0] for r in range(n)]
    done = np.zeros(n, dtype=np.int64)
    finish = np.full(n, np.nan)
    ctrl = CoSineController.of(template, policy)
    verify_busy = 0.0
    busy = np.zeros(template.n_drafters)
    live: list[int] = []
    log: list[tuple[float, float, int, float]] = []
    trace: dict[str, list[float]] = {k: [] for k in ("plan_s", "draft_s", "verify_s", "other_s", "predicted_draft_s",
                                                      "batch", "tokens", "context", "overrun_s")}
    nxt = 0
    start = time.perf_counter() - float(stream.arrival_s[0])
    while nxt < n or live:
        t = time.perf_counter() - start
        while nxt < n and stream.arrival_s[nxt] <= t:
            live.append(nxt)
            nxt += 1
        if not live:
            time.sleep(max(float(stream.arrival_s[nxt]) - t, 0.0))
            continue
        ids = np.array(live[:max_pending])
        t_step = time.perf_counter()
        step = _step(template, stream, ids, done, t, slo_s, urgent_after, ctrl)
        plan = _plan(step, policy, time_limit, rng, _router_options(router, policy, stream, ids))
        m = step.evaluate(plan)
        batch = {int(ids[i]): step.try_order(i, s) for i, s in enumerate(plan.routes) if s is not None}
        lengths = {int(ids[i]): int(plan.lengths[i]) for i, s in enumerate(plan.routes) if s is not None}
        plan_s = time.perf_counter() - t_step
        out = execute_step(cluster, {r: seqs[r] for r in batch}, batch, lengths, rng)
        if router is not None:
            router.observe(list(batch), stream.domain[list(batch)], list(batch.values()), list(lengths.values()),
                           [out.accepted.get(r, 0) for r in batch])
        verify_busy += out.verify_s
        context = sum(len(seqs[r]) for r in batch)
        t = time.perf_counter() - start
        before = int(done.sum())
        for r, toks in out.committed.items():
            toks = toks[: int(stream.output_tokens[r] - done[r])]
            seqs[r] = np.concatenate([seqs[r], toks]).astype(np.int64)
            done[r] += len(toks)
            if done[r] >= stream.output_tokens[r]:
                finish[r] = t
        wall = time.perf_counter() - t_step
        log.append((wall, m.step_s, int(done.sum()) - before, float(m.expected_tokens.sum())))
        for key, v in (("plan_s", plan_s), ("draft_s", out.draft_s), ("verify_s", out.verify_s),
                       ("other_s", wall - plan_s - out.draft_s - out.verify_s), ("predicted_draft_s", m.draft_s),
                       ("batch", len(batch)), ("tokens", m.tokens), ("context", context),
                       ("overrun_s", out.overrun_s)):
            trace[key].append(float(v))
        live = [r for r in live if np.isnan(finish[r])]
        if ctrl is not None:
            ctrl.update(len(ids), len(batch))
    return _report(stream, finish, done, verify_busy, busy, log, trace)


def refit(template: SpeculativeServing, report: SimReport) -> SpeculativeServing:
    """``template`` with its timing functions refitted to a live run's steps: the verifier's by non-negative least
    squares of the measured verification on :math:`1, B, N, \\sum n`; the drafters' :math:`a_j, b_j` (and the
    hop) scaled by the run's measured over predicted drafting time; the run's mean planning and other per-step
    time added to :math:`v_0`. Means, not medians: latency adds step times up, pauses included.

    Parameters
    ----------
    template
        The step template the live run used.
    report
        A :func:`serve_live` report (its ``trace``).
    """
    from scipy.optimize import nnls

    tr = report.trace
    if not tr or len(tr["verify_s"]) < 4:
        raise ProblemDataError("`report` has no live trace of at least 4 steps; expected a serve_live report")
    X = np.stack([np.ones_like(tr["batch"]), tr["batch"], tr["tokens"], tr["context"]], 1)
    v = nnls(X, tr["verify_s"])[0]
    v[0] += float(np.mean(tr["plan_s"]) + np.mean(tr["other_s"]))
    drafted = tr["predicted_draft_s"] > 0
    f = float(tr["draft_s"][drafted].sum() / tr["predicted_draft_s"][drafted].sum()) if drafted.any() else 1.0
    return dataclasses.replace(template, verify_s=v, draft_base_s=template.draft_base_s * f,
                               draft_per_request_s=template.draft_per_request_s * f, hop_s=template.hop_s * f)


__all__ = ["CoSineController", "SimReport", "Stream", "refit", "serve_live", "simulate"]
