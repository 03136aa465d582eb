r"""A pipeline plan run by PyTorch's own pipelining runtime (``torch.distributed.pipelining``).

:func:`run_torch_pipelining` hands a :class:`PipelinePartition` plan (or a :class:`SplitInference` plan: its tiers
in use as the stages) to the runtime a user would deploy it on:
the model is split at the plan's boundaries by ``pipeline(module, mb_args, split_spec)`` (the split points of
the ``split-spec`` export), every stage is a process (gloo over loopback, rendezvous through a file store in a
private directory: nothing listens beyond loopback) that builds its ``PipelineStage``, and a
``ScheduleGPipe`` or ``Schedule1F1B`` runs :math:`M` micro-batches. The measured iteration (rank 0's
``schedule.step``, median over ``steps`` after a warm-up) and every stage's compute per micro-batch (forward
hooks on the stage's sub-module) go into the same report as the gloo validator's
(:class:`~edgeplan.validation.partition.report.PartitionValidationReport`), next to ``problem.evaluate(plan)``;
the output of the last stage is compared with the unsplit model's.

The runtime's links are loopback at full speed (not paced): validate against a problem whose rates describe
loopback (:func:`~edgeplan.validation.partition.execute.host_pipeline_problem` with ``rates_bps=1e10``), or read
the link rows as what the planned links would add.

:func:`traced_boundary_bytes` is what the traced pipeline really sends into each stage per micro-batch: the
planned boundary (the activations a profile's blocks pass on) plus what the trace moves besides, such as the
causal mask a GPT-2 computes once in its first stage and every later stage reads. The ``split-spec`` export
records both.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
import traceback
from typing import Any

import numpy as np

from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan

SCHEDULES = ("gpipe", "1f1b")


def _per_stage(problem: PipelinePartition | SplitInference, plan: PipelinePlan | SplitPlan) -> dict[str, Any]:
    """What the run needs of either kind of plan: micro-batch size and count, and per stage and link the
    prediction (a split plan is a pipeline of its tiers in use, one micro-batch of ``batch_size``)."""
    from edgeplan.formulations.partition.stages import plan_stages

    m = problem.evaluate(plan)
    stages = plan_stages(problem, plan)
    if isinstance(plan, PipelinePlan):
        b = plan.boundaries
        return {"micro_batch": problem.micro_batch, "n_micro": problem.n_micro, "predicted_s": m.iteration_s,
                "stage_s": list(m.forward_s), "link_s": list(m.link_s),
                "planned_bytes": [float(problem.data()["boundary"][b[s + 1]]) for s in range(len(stages) - 1)],
                "labels": [f"stage{s} (dev {int(plan.devices[s])})" for s in range(len(stages))], "metrics": m}
    tiers = [st["tier"] for st in stages]
    return {"micro_batch": problem.batch_size, "n_micro": 1, "predicted_s": m.latency_s,
            "stage_s": [float(m.tier_time_s[t]) for t in tiers],
            "link_s": [float(m.link_time_s[a:b].sum()) for a, b in itertools.pairwise(tiers)],
            "planned_bytes": [float(m.link_bytes[a]) for a in tiers[:-1]],
            "labels": [f"stage{s} (tier {t}: {problem.tiers[t].name})" for s, t in enumerate(tiers)], "metrics": m}


def _split_points(problem: PipelinePartition | SplitInference, plan: PipelinePlan | SplitPlan) -> dict[str, Any]:
    from edgeplan.formulations.partition.stages import pipelining_points

    pip = pipelining_points(problem, plan)
    if not pip or not pip["exact"]:
        raise PlanError("the plan's stages do not begin at module boundaries of the model (its split spec is not "
                        "exact): torch.distributed.pipelining cannot cut there")
    return dict(pip["split_spec"])


def _micro_batch(inputs: Any, b: int) -> tuple[Any, ...]:
    import torch

    args = inputs if isinstance(inputs, tuple) else (inputs,)
    n = int(args[0].shape[0])
    if b % n:
        raise ProblemDataError(f"`inputs` hold a batch of {n}; the problem's micro-batch {b} is not a multiple of it")
    return tuple(torch.cat([a] * (b // n)) for a in args)


def _pipe(module: Any, mb_args: tuple[Any, ...], points: dict[str, Any]) -> Any:
    from torch.distributed.pipelining import SplitPoint, pipeline

    return pipeline(module, mb_args=mb_args, split_spec={k: getattr(SplitPoint, v) for k, v in points.items()})


def traced_boundary_bytes(problem: PipelinePartition | SplitInference, plan: PipelinePlan | SplitPlan, module: Any,
                          inputs: Any) -> list[float]:
    """Bytes the traced pipeline sends into stages 1..S-1 per micro-batch (see the module docstring).

    Parameters
    ----------
    problem, plan
        A pipeline problem and a plan whose stages begin at module boundaries.
    module, inputs
        The torch model and example inputs (tiled to the problem's micro-batch).

    Returns
    -------
    list of float
        One entry per stage after the first.
    """
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    mb = _micro_batch(inputs, _per_stage(problem, plan)["micro_batch"])
    pipe = _pipe(module, mb, _split_points(problem, plan))
    gm = pipe.split_gm
    with torch.no_grad():
        ShapeProp(gm).propagate(*mb)
    into: list[float] = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and str(node.target).startswith("submod_"):
            total = 0.0
            for arg in node.all_input_nodes:
                meta = arg.meta.get("tensor_meta")
                if meta is not None and hasattr(meta, "shape"):
                    total += float(np.prod(meta.shape)) * torch.empty((), dtype=meta.dtype).element_size()
            into.append(total)
    return into[1:]


def _worker(rank: int, world: int, store: str, job: dict[str, Any], results: Any) -> None:
    """One stage (a spawned process): build the pipeline, run warm-up and timed schedule steps."""
    import torch
    import torch.distributed as dist
    from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe

    try:
        from edgeplan.validation.partition.gloo import join_group

        module = join_group(rank, world, store, job)
        pipe = _pipe(module, job["mb_args"], job["points"])
        stage = pipe.build_stage(rank, device=torch.device("cpu"))
        compute: list[float] = []
        began: list[float] = []
        stage.submod.register_forward_pre_hook(lambda *_: began.append(time.perf_counter()))
        stage.submod.register_forward_hook(lambda *_: compute.append(time.perf_counter() - began[-1]))
        kind = ScheduleGPipe if job["schedule"] == "gpipe" else Schedule1F1B
        schedule = kind(stage, n_microbatches=job["n_micro"])
        steps, out = [], None
        with torch.no_grad():
            for i in range(1 + job["steps"]):
                dist.barrier()
                compute.clear()
                t = time.perf_counter()
                out = schedule.step(*job["batch"]) if rank == 0 else schedule.step()
                dist.barrier()
                if i:
                    steps.append(time.perf_counter() - t)
                    per_mb = float(np.median(compute)) if compute else 0.0
        last = out[0] if isinstance(out, tuple) else out
        results.put((rank, steps, per_mb, None if rank < world - 1 else getattr(last, "logits", last), None))
        dist.destroy_process_group()
    except Exception:  # report, never hang the parent
        results.put((rank, [], 0.0, None, traceback.format_exc()))


def run_torch_pipelining(problem: PipelinePartition | SplitInference, plan: PipelinePlan | SplitPlan, model: Any,
                         inputs: Any, *,
                         schedule: str = "gpipe", steps: int = 3, timeout_s: float = 180.0, threads: int = 1) -> Any:
    """Run ``plan`` with ``torch.distributed.pipelining`` (see the module docstring); returns the report.

    Parameters
    ----------
    problem, plan
        An inference :class:`PipelinePartition`, or a :class:`SplitInference` (its tiers in use are the stages,
        one micro-batch of ``batch_size``), and a plan whose stages are contiguous and begin at module
        boundaries.
    model
        A torch module, or a zoo spec ``{"name", "size", "batch_size", "seed"}`` (rebuilt in every process).
    inputs
        Example inputs; tiled to one micro-batch of ``problem.micro_batch`` samples, and to
        ``problem.n_micro`` micro-batches for the iteration.
    schedule
        ``"gpipe"`` (``ScheduleGPipe``) or ``"1f1b"`` (``Schedule1F1B``).
    steps
        Timed iterations after one warm-up; medians are reported.
    timeout_s, threads
        Bound on the whole run; intra-op threads per stage process.
    """
    import torch
    import torch.multiprocessing as tmp

    from edgeplan.validation.partition.gloo import _build, collect_ranks, loopback_interface
    from edgeplan.validation.partition.report import PartitionValidationReport, StageComparison

    if not isinstance(plan, PipelinePlan | SplitPlan):
        raise PlanError(f"`plan` is a {type(plan).__name__}; expected a PipelinePlan or a SplitPlan")
    if schedule not in SCHEDULES:
        raise ProblemDataError(f"`schedule` = {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    if getattr(problem, "training", False):
        raise ProblemDataError("run_torch_pipelining runs inference pipelines; the problem has mode='training'")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ProblemDataError(f"`steps` = {steps!r}; expected a positive integer")
    broken = problem.check(plan)
    if broken:
        raise PlanError(f"the plan breaks {len(broken)} constraint(s), first {broken[0]}")
    module = _build(model)
    shape = _per_stage(problem, plan)
    mb = _micro_batch(inputs, shape["micro_batch"])
    points = _split_points(problem, plan)
    batch = tuple(torch.cat([a] * shape["n_micro"]) for a in mb)
    S = len(shape["labels"])
    if schedule == "1f1b" and shape["n_micro"] < S:
        raise ProblemDataError(f"`schedule` = '1f1b' needs at least as many micro-batches as stages; the plan has "
                               f"{S} stages and {shape['n_micro']} micro-batch(es): use 'gpipe' or more n_micro")
    job = {"model": model, "mb_args": mb, "points": points, "batch": batch, "n_micro": shape["n_micro"],
           "schedule": schedule, "steps": steps, "timeout_s": timeout_s, "threads": threads,
           "interface": loopback_interface()}
    ctx = tmp.get_context("spawn")
    results = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="edgeplan-pipelining-") as private:  # mode 0700: ours alone
        store = os.path.join(private, "rendezvous")
        procs = [ctx.Process(target=_worker, args=(r, S, store, job, results), daemon=True) for r in range(S)]
        for p in procs:
            p.start()
        got = collect_ranks(procs, results, S, timeout_s, "the torch.distributed.pipelining run")
    with torch.no_grad():
        ref = module(*batch)
    ref = getattr(ref, "logits", ref[0] if isinstance(ref, tuple) else ref)
    out = got[S - 1][3]
    err = float((out.float() - ref.float()).abs().max()) if out is not None and out.shape == ref.shape else np.inf
    m = shape["metrics"]
    traced = traced_boundary_bytes(problem, plan, module, inputs)
    comps = []
    for s in range(S):
        comps.append(StageComparison(shape["labels"][s], float(shape["stage_s"][s]), float(got[s][2]), "compute"))
        if s < S - 1:
            comps.append(StageComparison(f"link{s} (loopback)", float(shape["link_s"][s]), float("nan"),
                                         f"{traced[s]:.0f} B traced, {shape['planned_bytes'][s]:.0f} B planned per "
                                         "micro-batch"))
    return PartitionValidationReport(
        kind=f"torch.distributed.pipelining ({S} stages, {schedule}, {shape['n_micro']} micro-batches)",
        stages=tuple(comps), predicted_s=float(shape["predicted_s"]), measured_s=float(np.median(got[0][1])),
        output_max_abs_error=err, output_rel_error=err / max(float(ref.float().abs().max()), 1e-30),
        time_source=m.time_source,
        details={"step_s": {s: got[s][1] for s in got}, "traced_bytes": traced, "split_spec": points})


__all__ = ["SCHEDULES", "run_torch_pipelining", "traced_boundary_bytes"]
