"""Baselines of federated fine-tuning configuration, each a method of its own.

``uniform-depth``
    One LoRA depth for every device, without quantization: the deepest that fits the weakest device's memory
    (homogeneous LoRA, as in FedIT-style systems).
``full-depth``
    Every device trains LoRA on every layer, quantizing as few layers as its memory needs (widest bits first);
    a device that cannot fit every layer even fully quantized takes its deepest configuration that fits. The
    stragglers set the round time.
``no-quant``
    FedQuad's greedy without activation quantization (depth only, as in LEGEND).
``random-config``
    Each device a uniformly random configuration that fits its memory (seeded).

``uniform-depth`` and ``full-depth`` read a depth field: FedQuad's LoRA depth (``lora_depth``, with
``quantized_layers``) or, on FedBE's tables, the number of appended blocks trained (``n_blocks``): the same number
of blocks on every device, or as many as each device's memory holds. ``no-quant`` needs FedQuad's fields;
``random-config`` takes any table. All ignore coverage rows: a plan that leaves a block untrained ends as
``no_solution`` with the plan kept (:func:`~edgeplan.solvers.result.heuristic_result`).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.solvers.finetune.fedquad import efficient, greedy
from edgeplan.solvers.finetune.finetune_sweep import no_candidate
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def _fedquad_fields(problem: FineTuneRound) -> str | None:
    if problem.field_index("lora_depth") is None or problem.field_index("quantized_layers") is None:
        return "needs FedQuad configurations (config fields 'lora_depth' and 'quantized_layers')"
    return None


def _depth_fields(problem: FineTuneRound) -> str | None:
    if problem.field_index("n_blocks") is not None:
        return None
    return _fedquad_fields(problem) and ("needs FedQuad configurations (config fields 'lora_depth' and "
                                         "'quantized_layers') or FedBE's ('n_blocks')")


def _columns(problem: FineTuneRound) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: its depth (LoRA depth, or appended blocks trained) and its quantized layers (0 for FedBE)."""
    if problem.field_index("lora_depth") is None:
        depth = problem.config[..., problem.field_index("n_blocks")]
        return depth, np.zeros_like(depth)
    return (problem.config[..., problem.field_index("lora_depth")],
            problem.config[..., problem.field_index("quantized_layers")])


def _deepest(problem: FineTuneRound, mask: np.ndarray, depth: np.ndarray, quant: np.ndarray) -> np.ndarray:
    """Per device, among ``mask``: the deepest, then the fewest quantized layers, then the highest utility."""
    key = np.where(mask, depth * 1e6 - quant * 1e3, -np.inf)
    best = key.max(axis=1, keepdims=True)
    cand = mask & (key == best)
    return np.argmax(np.where(cand, problem.weighted_utility(), -np.inf), axis=1)


@register("uniform-depth", problem=FineTuneRound, kind="heuristic", priority=40, refuses=_depth_fields)
def solve_uniform_depth(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """The deepest LoRA depth every device fits without quantization, the same on every device."""
    t0 = time.perf_counter()
    depth, quant = _columns(problem)
    plain = problem.allowed() & (quant == 0)
    common = None
    for d in sorted(np.unique(depth[plain]).tolist(), reverse=True):
        if (plain & (depth == d)).any(axis=1).all():
            common = d
            break
    plan = None if common is None else FineTunePlan(_deepest(problem, plain & (depth == common), depth, quant))
    return heuristic_result(problem, plan, "uniform-depth", t0, infeasible=no_candidate(problem),
                            dead_end="no LoRA depth fits every device without quantization")


@register("full-depth", problem=FineTuneRound, kind="heuristic", priority=41, refuses=_depth_fields)
def solve_full_depth(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """LoRA on every layer of every device (quantizing what memory needs); stragglers set the round."""
    t0 = time.perf_counter()
    why = no_candidate(problem)
    plan = None
    if why is None:
        depth, quant = _columns(problem)
        plan = FineTunePlan(_deepest(problem, problem.allowed(), depth, quant))
    return heuristic_result(problem, plan, "full-depth", t0, infeasible=why)


@register("no-quant", problem=FineTuneRound, kind="heuristic", priority=42, refuses=_fedquad_fields)
def solve_no_quant(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """FedQuad's greedy over depths without activation quantization."""
    t0 = time.perf_counter()
    _, quant = _columns(problem)
    plain = problem.allowed() & (quant == 0)
    plan = greedy(problem, efficient(problem, plain)) if plain.any(axis=1).all() else None
    return heuristic_result(problem, plan, "no-quant", t0, infeasible=no_candidate(problem),
                            dead_end="a device fits no configuration without quantization")


@register("random-config", problem=FineTuneRound, kind="heuristic", priority=90)
def solve_random_config(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """A uniformly random configuration per device among those that fit (seeded by ``seed``)."""
    t0 = time.perf_counter()
    why = no_candidate(problem)
    plan = None
    if why is None:
        rng = np.random.default_rng(ctx.seed)
        ok = problem.allowed()
        plan = FineTunePlan(np.argmax(np.where(ok, rng.random(ok.shape), -1.0), axis=1))
    return heuristic_result(problem, plan, "random-config", t0, infeasible=why)


__all__ = ["solve_full_depth", "solve_no_quant", "solve_random_config", "solve_uniform_depth"]
