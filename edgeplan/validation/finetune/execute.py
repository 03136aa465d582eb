"""A FedQuad round measured on a real model, and the executor that checks a plan's configurations on it.

``"finetune-measured"`` calibrates a zoo transformer on this host (:func:`~.measure.measure_many` of the
:func:`~.measure.anchors`; seconds for the small sizes) and builds the round of N preset devices from it: a
device's step time is the host's times the ratio of the host's measured throughput to the device's
(``time_scale``). :func:`validate_finetune` runs every configuration a plan uses, as ``peft`` LoRA with
quantized activations, and reports predicted against measured memory (bytes, exact) and host step time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.candidates import FEDQUAD_FIELDS, LORA_TARGETS, fedquad_round
from edgeplan.formulations.finetune.instances import draw_devices
from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.registry import generator, validator
from edgeplan.validation.finetune.fedbe import FEDBE_FIELDS, measure_subsets
from edgeplan.validation.finetune.measure import LoRAModel, anchors, fit_costs, lora_model, measure_many


def parse_model(model: str) -> tuple[str, str]:
    """``"gpt2:small"`` -> ``("gpt2", "small")``, checked against the LoRA targets."""
    name, _, size = (model or "").partition(":")
    if name not in LORA_TARGETS or size not in ("full", "small", "tiny"):
        raise ProblemDataError(f"`model` = {model!r}; expected '<name>:<size>' with a name among "
                               f"{', '.join(LORA_TARGETS)} and a size among full, small, tiny")
    return name, size


def train_flops(lm: LoRAModel) -> float:
    """Work of a full-depth LoRA step of ``lm``'s model and batch, :math:`4 P n` for :math:`P` parameters and
    :math:`n` tokens (forward :math:`2Pn`, backward through the frozen weights about as much): how the host's
    speed is compared with a device preset's FLOP/s."""
    return 4.0 * sum(p.numel() for p in lm.module.parameters()) * lm.inputs["input_ids"].numel()


@generator("finetune-measured", real_model=True, tiny=({"n_devices": 2, "model": "gpt2:tiny"},))
def measured_instance(n_devices: int = 8, *, seed: int = 0, model: str = "gpt2:small", bits: str = "8,4",
                      batch_size: int = 4, rounds: int = 3, local_steps: float = 10.0, goal: str = "rate",
                      memory_share_low: float = 0.0005, memory_share_high: float = 0.005,
                      server_time_s: float = 0.05) -> FineTuneRound:
    """A FedQuad round whose candidate table is measured on ``model`` on this host (LoRA rank 8, ``batch_size``
    sequences). Devices from the presets; memory caps a share U(``memory_share_low``, ``memory_share_high``) of
    their memory (small, as the model is), at least the smallest unquantized configuration.

    Parameters
    ----------
    n_devices
        N, drawn from the device presets.
    seed
        Seeds the devices, memory shares, uplinks and weights (the measurements are the host's).
    model
        ``"<zoo name>:<size>"`` with a name among ``gpt2``, ``bert_base``, ``llama_small``.
    bits
        Comma-separated activation bit widths.
    batch_size, rounds
        Sequences per step, and timed rounds per anchor (:func:`~.measure.measure_many`).
    local_steps, goal, server_time_s
        As in :class:`~edgeplan.formulations.finetune.round.FineTuneRound`.
    memory_share_low, memory_share_high
        Range of the share of a device's memory left for fine-tuning.
    """
    name, size = parse_model(model)
    widths = tuple(int(b) for b in bits.split(","))
    lm = lora_model(name, 1, size=size, batch_size=batch_size)
    L = lm.n_layers
    keys = anchors(L, widths)
    meas = dict(zip(keys, measure_many(name, keys, rounds=rounds, size=size, batch_size=batch_size), strict=True))
    costs = fit_costs(meas, L, widths)
    host_rate = train_flops(lm) / meas[(L, 0, 0)].step_time_s  # achieved FLOP/s
    rng = np.random.default_rng(seed)
    table = costs.fedquad_table(widths)
    smallest = table["memory_bytes"][table["config"][:, 1] == 0].min()
    dev = draw_devices(n_devices, rng, (memory_share_low, memory_share_high), smallest)
    scale = host_rate / dev["flops_per_s"]
    w = rng.uniform(0.5, 1.5, size=n_devices)
    return fedquad_round(costs, 1.0 / scale, dev["memory_cap_bytes"], dev["uplink_bps"], bits=widths,
                         local_steps=local_steps, weights=w / w.sum(), goal=goal, server_time_s=server_time_s,
                         model=f"{name}:{size}", time_scale=scale, name=f"finetune-{name}-{size}")


@dataclass(frozen=True, slots=True)
class FineTuneValidationReport:
    """Predicted against measured, per configuration the plan uses.

    Attributes
    ----------
    model
        The zoo model executed.
    rows
        One dict per configuration: the devices using it, the configuration fields, predicted and measured
        memory (bytes) and host step time (s), and their relative errors.
    fields
        The configuration fields (FedQuad's, or FedBE's ``block_mask`` and ``n_blocks``).
    """

    model: str
    rows: list[dict[str, Any]]
    fields: tuple[str, ...] = FEDQUAD_FIELDS

    def __str__(self) -> str:
        lines = [f"model {self.model}: predicted vs measured per configuration ({', '.join(self.fields)})",
                 f"{'config':<16}{'devices':<12}{'memory pred':>14}{'meas':>14}{'err':>8}"
                 f"{'step pred ms':>14}{'meas':>10}{'err':>8}"]
        for r in self.rows:
            cfg = ",".join(str(r[f]) for f in self.fields)
            lines.append(f"{cfg:<16}{','.join(map(str, r['devices'])):<12}{r['memory_pred']:>14.0f}"
                         f"{r['memory_meas']:>14.0f}{r['memory_err']:>+8.1%}{1e3 * r['time_pred_s']:>14.2f}"
                         f"{1e3 * r['time_meas_s']:>10.2f}{r['time_err']:>+8.1%}")
        return "\n".join(lines)


@validator(FineTuneRound, "fine-tuning steps of the plan's configurations (peft LoRA with quantized activations, "
                          "or FedBE's appended blocks)")
def validate_finetune(problem: FineTuneRound, plan: FineTunePlan, *, device: str = "cpu", rounds: int = 3,
                      batch_size: int = 4) -> FineTuneValidationReport:
    """Run each configuration the plan uses on ``problem.model`` and compare with the tables (memory includes
    the frozen weights on both sides; the step time is the device's divided by its ``time_scale``). FedQuad
    rounds run ``peft`` LoRA steps with quantized activations; FedBE rounds (``"fedbe-measured"``) run the
    expanded model with the plan's subsets of appended blocks trainable.

    Parameters
    ----------
    problem
        A round whose ``model`` names a zoo model and whose candidates are FedQuad configurations.
    plan
        Its plan.
    device
        ``"cpu"`` (the executor runs on the host).
    rounds, batch_size
        Timed rounds per configuration, and sequences per step (as when the round was measured).
    """
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; the fine-tuning executor runs on 'cpu'")
    if not problem.model:
        raise ProblemDataError("the round names no model (`model` = ''); build it with 'finetune-measured' or "
                               "set `model` to '<zoo name>:<size>'")
    if problem.config_fields == FEDBE_FIELDS:
        return _validate_fedbe(problem, plan, rounds, batch_size)
    if problem.field_index("lora_depth") is None:
        raise ProblemDataError("the round's candidates are neither FedQuad nor FedBE configurations; expected "
                               f"config fields {FEDQUAD_FIELDS} or {FEDBE_FIELDS}")
    name, size = parse_model(problem.model)
    choice = problem.decode_plan(plan)
    configs: dict[tuple[int, int, int], list[int]] = {}
    for i, c in enumerate(choice):
        d = problem.describe(i, int(c))
        configs.setdefault((d["lora_depth"], d["quantized_layers"], d["bits"]), []).append(i)
    keys = list(configs)
    meas = measure_many(name, keys, rounds=rounds, size=size, batch_size=batch_size)
    rows = []
    for key, m in zip(keys, meas, strict=True):
        i = configs[key][0]
        rows.append({**dict(zip(FEDQUAD_FIELDS, key, strict=True)),
                     **_row(problem, i, int(choice[i]), configs[key], m.memory_bytes + m.frozen_bytes, m.step_time_s)})
    return FineTuneValidationReport(problem.model, rows)


def _row(problem: FineTuneRound, i: int, c: int, devices: list[int], memory: float, step: float) -> dict[str, Any]:
    pred_mem = float(problem.memory_bytes[i, c])
    pred_t = float(problem.step_time_s[i, c] / problem.time_scale[i])
    return {"devices": devices, "memory_pred": pred_mem, "memory_meas": memory, "memory_err": pred_mem / memory - 1,
            "time_pred_s": pred_t, "time_meas_s": step, "time_err": pred_t / step - 1}


def _validate_fedbe(problem: FineTuneRound, plan: FineTunePlan, rounds: int,
                    batch_size: int) -> FineTuneValidationReport:
    """FedBE: measure the subsets of appended blocks the plan trains (:func:`~.fedbe.measure_subsets`)."""
    choice = problem.decode_plan(plan)
    users: dict[int, list[int]] = {}
    for i, c in enumerate(choice):
        users.setdefault(int(c), []).append(i)
    subsets = [tuple(j for j in range(problem.n_blocks) if problem.describe(0, c)["block_mask"] >> j & 1)
               for c in users]
    meas = measure_subsets(problem.model, problem.n_blocks, subsets, batch_size=batch_size, rounds=rounds)
    rows = [{**problem.describe(devs[0], c), **_row(problem, devs[0], c, devs, m.memory_bytes, m.step_time_s)}
            for (c, devs), m in zip(users.items(), meas, strict=True)]
    return FineTuneValidationReport(problem.model, rows, FEDBE_FIELDS)


__all__ = ["FineTuneValidationReport", "measured_instance", "parse_model", "train_flops", "validate_finetune"]
