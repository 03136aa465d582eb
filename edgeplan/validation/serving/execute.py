r"""Serving steps measured on the models trained here, and their plans executed for real.

* ``"speculative-step-measured"``: a :class:`~edgeplan.formulations.serving.step.SpeculativeServing` step whose
  acceptance table and timing functions are measured on this host (the target and one drafter per domain of
  :class:`~edgeplan.validation.serving.live.ServingModels`, acceptance by
  :func:`~edgeplan.validation.serving.speculative.measure_acceptance`, timings by
  :func:`~edgeplan.validation.serving.live.calibrate` on a live cluster); its name carries the training steps.
* The validator runs a plan's step on a :class:`~edgeplan.validation.serving.live.LiveCluster` several times and
  reports measured against predicted: the step's time (:math:`\tau`), and each request's committed tokens
  (:math:`E_r`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing
from edgeplan.registry import generator, validator
from edgeplan.validation.lm import LMConfig, MarkovCorpus
from edgeplan.validation.serving.live import LiveCluster, ServingModels, calibrate, execute_step, measured_template
from edgeplan.validation.serving.speculative import measure_acceptance


def serving_models(domains: int = 2, target_steps: int = 600, drafter_steps: int = 400) -> ServingModels:
    """The target and drafters of :class:`ServingModels` with ``domains`` domains and these training steps."""
    return ServingModels(corpus=MarkovCorpus(vocab=32, domains=domains, seed=3),
                         target=LMConfig(n_layer=4, n_embd=64, steps=target_steps, seed=1),
                         drafter=LMConfig(n_layer=1, n_embd=32, n_head=2, steps=drafter_steps, seed=2))


@generator("speculative-step-measured", real_model=True,
           tiny=({"n_requests": 3, "target_steps": 30, "drafter_steps": 20, "max_speculation": 2},))
def measured_step_instance(n_requests: int = 8, *, seed: int = 0, domains: int = 2, target_steps: int = 600,
                           drafter_steps: int = 400, max_speculation: int = 6, capacity: int = 8,
                           max_verify_tokens: float = 56, prompt: int = 16, output: int = 32) -> SpeculativeServing:
    """A step on the models trained here, acceptance and timings measured on this host (module docstring).

    Parameters
    ----------
    n_requests
        Pending requests, domains uniform, contexts U(``prompt``, ``prompt + output``) tokens.
    seed
        Seeds the requests, the calibration and the acceptance measurement.
    domains, target_steps, drafter_steps
        The models (:func:`serving_models`).
    max_speculation, capacity, max_verify_tokens
        :math:`K`, :math:`c_j` and :math:`N_{max}`.
    prompt, output
        The stream's prompt and output lengths.
    """
    if isinstance(n_requests, bool) or not isinstance(n_requests, int) or n_requests < 1:
        raise ProblemDataError(f"`n_requests` = {n_requests!r}; expected a whole number >= 1")
    models = serving_models(domains, target_steps, drafter_steps)
    with LiveCluster(models, seed) as cluster:  # the processes and messages the validator will run
        timing = calibrate(cluster, prompt=prompt, output=output, repeats=3, warmup=5, max_draft=max_speculation,
                           seed=seed)
    alpha = measure_acceptance(models.load_target(), [models.load_drafter(d) for d in range(domains)],
                               models.corpus, prompts=4, prompt_len=prompt, new_tokens=output, k=max_speculation,
                               seed=seed)
    rng = np.random.default_rng(seed)
    return measured_template(timing, alpha, prompt=prompt, output=output, capacity=capacity,
                             max_speculation=max_speculation, max_verify_tokens=max_verify_tokens,
                             domain=rng.integers(0, domains, n_requests),
                             context_tokens=rng.integers(prompt, prompt + output, n_requests),
                             name=f"speculative-step-measured-t{target_steps}-d{drafter_steps}-s{seed}")


@dataclass(frozen=True)
class ServingValidationReport:
    """A plan's step executed ``repeats`` times on the live cluster.

    Attributes
    ----------
    predicted_s, measured_s
        :math:`\\tau` of the model, and the median measured step (rounds and verification, hub to hub).
    expected_tokens, measured_tokens
        ``(R,)`` :math:`E_r` and the mean committed tokens per batched request (0 outside the batch).
    repeats
        Executions.
    """

    predicted_s: float
    measured_s: float
    expected_tokens: np.ndarray
    measured_tokens: np.ndarray
    repeats: int

    @property
    def time_error(self) -> float:
        """Predicted over measured step time, minus 1."""
        return self.predicted_s / self.measured_s - 1.0


def _models_of(problem: SpeculativeServing) -> ServingModels:
    m = re.fullmatch(r"speculative-step-measured-t(\d+)-d(\d+)-s\d+", problem.name)
    if m is None:
        raise ProblemDataError(f"`problem.name` = {problem.name!r}; the validator runs steps of "
                               "'speculative-step-measured' (their name carries the models)")
    return serving_models(problem.n_domains, int(m.group(1)), int(m.group(2)))


@validator(SpeculativeServing, "the step's drafts, verification and acceptance on the models trained here")
def validate_serving_step(problem: SpeculativeServing, plan: ServingPlan, *, device: str = "cpu",
                          repeats: int = 10, seed: int = 0) -> ServingValidationReport:
    """Execute ``plan``'s step ``repeats`` times on a live cluster (one drafter process per domain, the verifier,
    loopback) with contexts of the problem's lengths from each request's domain.

    Parameters
    ----------
    problem
        A step from ``speculative-step-measured``.
    plan
        Its plan (several drafters per request make token trees).
    device
        ``"cpu"``.
    repeats
        Executions (fresh draws each).
    seed
        Seeds the contexts and the acceptance draws.
    """
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; the serving validator runs on 'cpu'")
    models = _models_of(problem)
    m = problem.evaluate(plan)
    rng = np.random.default_rng(seed)
    batch = {r: problem.try_order(r, s) for r, s in enumerate(plan.routes) if s is not None}
    lengths = {r: int(plan.lengths[r]) for r in batch}
    got = np.zeros(problem.n_requests)
    times = []
    with LiveCluster(models, seed) as cluster:
        for i in range(repeats + 1):
            ctx = {r: models.corpus.sample(1, int(problem.context_tokens[r]), rng, [int(problem.domain[r])])[0]
                   for r in batch}
            out = execute_step(cluster, ctx, batch, lengths, rng)
            if i:  # the first run warms the processes up
                times.append(out.draft_s + out.verify_s)
                for r, toks in out.committed.items():
                    got[r] += len(toks) / repeats
    return ServingValidationReport(predicted_s=m.step_s, measured_s=float(np.median(times)),
                                   expected_tokens=m.expected_tokens, measured_tokens=got, repeats=repeats)


__all__ = ["ServingValidationReport", "measured_step_instance", "serving_models", "validate_serving_step"]
