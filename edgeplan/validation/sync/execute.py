"""Sync schedules measured on real models.

* FedAttn: the ``"kv-sync-measured"`` generator (its error table calibrated on this host) and the validator
  that runs a plan on held-out prompts;
* CoCoDC: the ``"fragment-sync-measured"`` generator (fragment sizes, changes and windows recorded from a
  cross-region run) and the validator that trains under a plan and compares transfer times per slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync, staleness_limit
from edgeplan.formulations.sync.instances import DEVICE_POOL, transformer_kv_sync
from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan
from edgeplan.registry import generator, validator
from edgeplan.validation.lm import LMConfig, MarkovCorpus, trained_lm
from edgeplan.validation.sync.fedattn import calibrate, quality, split_tokens
from edgeplan.validation.sync.regions import RegionsConfig, recorded_problem, run_regions

#: Seeds of the calibration prompts and of the validator's held-out prompts (never the same).
CALIBRATION_SEED, HELD_OUT_SEED = 1, 2


def _lm(n_layer: int, steps: int) -> tuple[Any, MarkovCorpus, LMConfig]:
    corpus, cfg = MarkovCorpus(), LMConfig(n_layer=n_layer, steps=steps)
    return trained_lm(corpus, cfg), corpus, cfg


def _prompts(corpus: MarkovCorpus, n: int, length: int, seed: int) -> Any:
    import torch

    return torch.from_numpy(corpus.sample(n, length, np.random.default_rng(seed)))


@generator("kv-sync-measured", real_model=True, tiny=({"n_participants": 2, "n_layer": 3, "steps": 40},))
def measured_kv_sync(n_participants: int = 4, *, seed: int = 0, n_layer: int = 6, steps: int = 800,
                     prompt_tokens: int = 64, prompts: int = 32, budget_fraction: float = 0.3,
                     max_schedules: int = 96, sync_latency_s: float = 0.005) -> KVSyncSchedule:
    """A FedAttn schedule on the decoder of :mod:`~edgeplan.validation.lm` (``n_layer`` blocks trained
    ``steps`` steps, cached): ``prompt_tokens`` split evenly over ``n_participants``, the error table fitted to
    the KL measured on ``prompts`` calibration prompts, devices from the presets and links 2-50 MB/s; the budget
    is ``budget_fraction`` of the calibrated error of no sync.

    Parameters
    ----------
    n_participants
        N.
    seed
        Devices and links.
    n_layer, steps
        The decoder's blocks and training steps (the cache key).
    prompt_tokens, prompts
        Prompt length and calibration prompts.
    budget_fraction
        The error budget as a share of no sync's.
    max_schedules
        Schedules measured for the fit (every one when :math:`2^L` is fewer).
    sync_latency_s
        :math:`\\delta`.
    """
    from edgeplan.profiles import load_device

    model, corpus, cfg = _lm(n_layer, steps)
    tokens = split_tokens(prompt_tokens, n_participants)
    table, _, _ = calibrate(model, _prompts(corpus, prompts, prompt_tokens, CALIBRATION_SEED), tokens,
                            max_schedules=max_schedules, seed=seed)
    rng = np.random.default_rng(seed)
    rate = np.array([(d := load_device(str(name))).peak("fp32") * d.efficiency
                     for name in rng.choice(DEVICE_POOL, size=n_participants)])
    none = float(table[np.arange(n_layer), np.arange(n_layer)].sum())
    return transformer_kv_sync(tokens, rate, rng.uniform(2e6, 50e6, n_participants),
                               rng.uniform(2e6, 50e6, n_participants), table, n_blocks=n_layer, hidden=cfg.n_embd,
                               element_bytes=4.0, error_budget=budget_fraction * none, sync_latency_s=sync_latency_s,
                               name=f"fedattn-markov-{n_layer}x{steps}")


@dataclass(frozen=True, slots=True)
class KVSyncValidationReport:
    """Predicted against measured for one FedAttn schedule on held-out prompts.

    Attributes
    ----------
    blocks
        The synced blocks.
    error_pred, error_meas
        The table's error and the measured KL per token (nats).
    bytes_pred, bytes_meas
        K/V bytes per prompt, uploaded plus downloaded: from the problem and counted from the tensors.
    loss, agreement
        Measured next-token loss and greedy agreement with centralised attention.
    """

    blocks: tuple[int, ...]
    error_pred: float
    error_meas: float
    bytes_pred: float
    bytes_meas: float
    loss: float
    agreement: float

    def __str__(self) -> str:
        return (f"synced blocks {list(self.blocks)}: error predicted {self.error_pred:.4f}, measured "
                f"{self.error_meas:.4f} nats/token; K/V bytes per prompt predicted {self.bytes_pred:.0f}, "
                f"counted {self.bytes_meas:.0f}; loss {self.loss:.3f}, agreement {self.agreement:.1%}")


@validator(KVSyncSchedule, "federated attention on the trained decoder (held-out prompts)")
def validate_kv_sync(problem: KVSyncSchedule, plan: SyncPlan, *, device: str = "cpu", prompts: int = 32,
                     steps: int | None = None) -> KVSyncValidationReport:
    """Run ``plan`` on the decoder the problem was calibrated on (``kv-sync-measured``; its ``name`` carries the
    blocks and training steps) with the problem's token split, on ``prompts`` held-out prompts.

    Parameters
    ----------
    problem
        A schedule from ``kv-sync-measured``.
    plan
        Its plan.
    device
        ``"cpu"``.
    prompts
        Held-out prompts.
    steps
        The decoder's training steps (default: from the problem's name).
    """
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; this executor runs on 'cpu'")
    parts = problem.name.rsplit("-", 1)[-1].split("x")
    if not problem.name.startswith("fedattn-markov-") or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ProblemDataError(f"problem {problem.name!r} was not measured on the trained decoder; expected one "
                               "from the 'kv-sync-measured' generator")
    n_layer, trained = int(parts[0]), int(parts[1])
    model, corpus, cfg = _lm(n_layer, trained if steps is None else steps)
    if problem.kv_bytes_per_token[0] != 2 * cfg.n_embd * 4:
        raise ProblemDataError(f"`kv_bytes_per_token` = {problem.kv_bytes_per_token[0]}; the decoder has "
                               f"{2 * cfg.n_embd * 4} (fp32 K and V)")
    tokens = problem.tokens.astype(int)
    ids = _prompts(corpus, prompts, int(tokens.sum()), HELD_OUT_SEED)
    q = quality(model, ids, tokens, plan.blocks)
    m = problem.evaluate(plan)
    return KVSyncValidationReport(blocks=tuple(plan.blocks), error_pred=m.error, error_meas=q["kl"],
                                  bytes_pred=m.bytes_up + m.bytes_down,
                                  bytes_meas=(q["bytes_up"] + q["bytes_down"]) / prompts, loss=q["loss"],
                                  agreement=q["agreement"])


def _regions_name(cfg: RegionsConfig) -> str:
    return f"regions-{cfg.regions}x{cfg.slots}x{cfg.inner_steps}x{cfg.n_layer}-{cfg.wan_bps:g}-{cfg.seed}"


def _regions_config(problem: FragmentSync) -> RegionsConfig:
    try:
        shape, wan, seed = problem.name.removeprefix("regions-").split("-")
        r, t, h, layers = (int(v) for v in shape.split("x"))
        return RegionsConfig(regions=r, slots=t, inner_steps=h, n_layer=layers, wan_bps=float(wan), seed=int(seed))
    except ValueError:
        raise ProblemDataError(f"problem {problem.name!r} was not recorded from a cross-region run; expected one "
                               "from the 'fragment-sync-measured' generator") from None


@generator("fragment-sync-measured", real_model=True,
           tiny=({"regions": 2, "slots": 3, "inner_steps": 2, "n_layer": 2},))
def measured_fragment_sync(regions: int = 2, *, seed: int = 0, slots: int = 30, inner_steps: int = 10,
                           n_layer: int = 4, wan_bps: float = 0.65e6, max_staleness: int = 0) -> FragmentSync:
    """The fragment schedule a real cross-region run under ``cocodc`` measured (:func:`~edgeplan.validation.
    sync.regions.recorded_problem`): what an exact schedule in hindsight is planned on.

    Parameters
    ----------
    regions, slots, inner_steps, n_layer, wan_bps
        The run (:class:`~edgeplan.validation.sync.regions.RegionsConfig`).
    seed
        The run's seed.
    max_staleness
        :math:`W` (0: none).
    """
    cfg = RegionsConfig(regions=regions, slots=slots, inner_steps=inner_steps, n_layer=n_layer, wan_bps=wan_bps,
                        seed=seed)
    return recorded_problem(run_regions("cocodc", cfg), staleness_limit(max_staleness), _regions_name(cfg))


@dataclass(frozen=True, slots=True)
class FragmentValidationReport:
    """Predicted against measured for one fragment schedule trained for real.

    Attributes
    ----------
    transfer_pred_s, transfer_meas_s
        ``(T,)`` per slot: the problem's transfer time and the measured one (slowest region).
    within_10pct
        Share of the slots with a transfer whose measured time is within 10 % of the prediction.
    loss
        ``(T,)`` the global model's held-out loss after each slot.
    """

    transfer_pred_s: np.ndarray
    transfer_meas_s: np.ndarray
    within_10pct: float
    loss: np.ndarray

    def __str__(self) -> str:
        sent = self.transfer_pred_s > 0
        err = (self.transfer_meas_s[sent] - self.transfer_pred_s[sent]) / self.transfer_pred_s[sent]
        worst = f"{np.abs(err).max():.1%}" if err.size else "n/a"
        return (f"{int(sent.sum())} slots with a transfer: measured within 10 % of predicted in "
                f"{self.within_10pct:.0%} (worst {worst}); final loss {self.loss[-1]:.3f}")


@validator(FragmentSync, "cross-region training under the plan (paced loopback links)")
def validate_fragments(problem: FragmentSync, plan: FragmentPlan, *, device: str = "cpu") -> FragmentValidationReport:
    """Train the run the problem was recorded from under ``plan`` and compare transfer times per slot.

    Parameters
    ----------
    problem
        A problem from ``fragment-sync-measured``.
    plan
        Its plan.
    device
        ``"cpu"``.
    """
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; this executor runs on 'cpu'")
    run = run_regions(plan, _regions_config(problem))
    pred = problem.evaluate(plan).transfer_s
    sent = pred > 0
    ok = np.abs(run.transfer_meas_s[sent] - pred[sent]) <= 0.1 * pred[sent]
    return FragmentValidationReport(transfer_pred_s=pred, transfer_meas_s=run.transfer_meas_s,
                                    within_10pct=float(ok.mean()) if ok.size else 1.0, loss=run.loss)


__all__ = ["FragmentValidationReport", "KVSyncValidationReport", "measured_fragment_sync", "measured_kv_sync",
           "validate_fragments", "validate_kv_sync"]
