r"""The ``split-spec`` export of partition plans: JSON a runtime reads.

:func:`split_spec` lists the stages (tier or device, block names and indices), the tensors crossing each link
with their planned widths, and for plans whose stages are contiguous in the profile's block order the
``torch.distributed.pipelining`` split points: the module that begins each stage after the first, as
``{"module.path": "BEGINNING"}`` (:func:`pipelining_split_spec` turns it into ``SplitPoint`` values for
``torch.distributed.pipelining.pipeline(..., split_spec=...)``). A stage that begins with a block that is not a
module (profiler glue) is moved to the next module boundary and marked ``"exact": false``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.errors import PlanError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.formulations.partition.stages import pipelining_points, plan_stages
from edgeplan.registry import exporter

SPEC_FORMAT = "edgeplan.split_spec"
SPEC_VERSION = 1


def split_spec(problem: SplitInference | PipelinePartition, plan: SplitPlan | PipelinePlan) -> dict[str, Any]:
    """The split spec document of the module docstring.

    Parameters
    ----------
    problem, plan
        A split or pipeline problem and its plan.

    Returns
    -------
    dict
        ``format``, ``version``, ``model``, ``kind``, ``n_blocks``, ``stages``, ``links`` and ``pipelining``
        (the split points, or ``None`` when the stages are not contiguous).
    """
    stages = plan_stages(problem, plan)
    names = problem.model.block_names
    pipelining = pipelining_points(problem, plan)
    links = []
    if isinstance(plan, SplitPlan):
        tau, bits = problem._parts(plan)
        raw, inp = problem.crossing(tau)
        for l in range(problem.n_tiers - 1):
            us = np.flatnonzero(raw[l] > 0)
            links.append({"link": l, "rate_bps": problem.links[l].rate_bps, "input_bytes": float(inp[l]),
                          "tensors": [{"block": int(u), "block_name": names[u], "bytes": float(raw[l, u]),
                                       "bits": int(bits[l, u])} for u in us]})
    else:
        b, dev = plan.boundaries, plan.devices
        d = problem.data()
        for s in range(dev.size - 1):
            links.append({"link": s, "after_block": int(b[s + 1]) - 1, "bytes_per_micro_batch":
                          float(d["boundary"][b[s + 1]]), "rate_bps": float(problem.rates_bps[dev[s], dev[s + 1]])})
    return {"format": SPEC_FORMAT, "version": SPEC_VERSION, "model": problem.model.name,
            "kind": "split" if isinstance(plan, SplitPlan) else "pipeline", "n_blocks": problem.n_blocks,
            "stages": stages, "links": links, "pipelining": pipelining}


def plan_document_with_metrics(problem: Any, result_or_plan: Any, *, report: Any = None,
                               source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The versioned plan document (:func:`edgeplan.io.plans.plan_document`: fingerprint, method, status, objective,
    bound, gap) plus ``metrics``: ``predicted`` (the problem's ``evaluate``) and, after a validation,
    ``measured`` (the :class:`~edgeplan.validation.partition.execute.PartitionValidationReport`). :func:`load_plan`
    reads it back (it ignores the extra key)."""
    from edgeplan.io.plans import plan_document, to_jsonable
    from edgeplan.solvers.result import Result

    doc = plan_document(problem, result_or_plan, source)
    plan = result_or_plan.require_plan() if isinstance(result_or_plan, Result) else result_or_plan
    metrics: dict[str, Any] = {"predicted": to_jsonable(problem.evaluate(plan))}
    if report is not None:
        metrics["measured"] = to_jsonable(report) | {"error": report.error, "within_10pct": report.within_10pct}
    doc["metrics"] = metrics
    return doc


def save_plan_with_metrics(path: str | Path, problem: Any, result_or_plan: Any, *, report: Any = None,
                           source: dict[str, Any] | None = None) -> Path:
    """Write :func:`plan_document_with_metrics` as JSON; returns the path."""
    p = Path(path)
    p.write_text(json.dumps(plan_document_with_metrics(problem, result_or_plan, report=report, source=source),
                            indent=1) + "\n")
    return p


def load_split_spec(path: str | Path) -> dict[str, Any]:
    """Read a split spec written by the ``split-spec`` exporter (format and version checked).

    Parameters
    ----------
    path
        The ``split_spec.json`` file.

    Returns
    -------
    dict
        The document (see :func:`split_spec`).
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanError(f"split spec `{p}` cannot be read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != SPEC_FORMAT:
        raise PlanError(f"split spec `{p}`: key `format` = {doc.get('format') if isinstance(doc, dict) else doc!r}; "
                        f"expected {SPEC_FORMAT!r}")
    if doc.get("version") != SPEC_VERSION:
        raise PlanError(f"split spec `{p}`: key `version` = {doc.get('version')!r}; expected {SPEC_VERSION}")
    return doc


def pipelining_split_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``{module: SplitPoint.BEGINNING}`` for ``torch.distributed.pipelining.pipeline`` from a split spec.

    Parameters
    ----------
    spec
        A split spec (:func:`load_split_spec`) whose stages are contiguous.

    Returns
    -------
    dict
        The ``split_spec`` argument of ``pipeline(module, mb_args, split_spec=...)``.
    """
    from torch.distributed.pipelining import SplitPoint

    pip = spec.get("pipelining")
    if not pip:
        raise PlanError("the split spec has no `pipelining` entry: its stages are not contiguous in block order")
    return {name: getattr(SplitPoint, point) for name, point in pip["split_spec"].items()}


@exporter("split-spec", plan=SplitPlan)
def export_split_spec(problem: SplitInference, plan: SplitPlan, out_dir: Path, **_: Any) -> list[Path]:
    """JSON split spec: stages, crossing tensors with widths, torch.distributed.pipelining split points."""
    p = out_dir / "split_spec.json"
    p.write_text(json.dumps(split_spec(problem, plan), indent=1))
    return [p]


@exporter("split-spec", plan=PipelinePlan)
def export_pipeline_spec(problem: PipelinePartition, plan: PipelinePlan, out_dir: Path, *, module: Any = None,
                         inputs: Any = None, **_: Any) -> list[Path]:
    """JSON split spec: stages on devices, boundary sizes, torch.distributed.pipelining split points.

    When the model can be had (``module=`` and ``inputs=``, or a zoo profile) and the split points are exact,
    each link also gets what the traced pipeline really sends per micro-batch
    (:func:`edgeplan.validation.partition.pipelining.traced_boundary_bytes`): ``planned_bytes_per_micro_batch``
    is the profile's boundary, ``traced_bytes_per_micro_batch`` the trace's (masks and other values a later stage
    reads included), and ``bytes_per_micro_batch`` the larger, what a runtime must provision.
    """
    spec = split_spec(problem, plan)
    traced = _traced(problem, plan, module, inputs) if (spec["pipelining"] or {}).get("exact") else None
    for i, link in enumerate(spec["links"]):
        link["planned_bytes_per_micro_batch"] = link["bytes_per_micro_batch"]
        link["traced_bytes_per_micro_batch"] = traced[i] if traced is not None else None
        if traced is not None:
            link["bytes_per_micro_batch"] = max(link["bytes_per_micro_batch"], traced[i])
    p = out_dir / "split_spec.json"
    p.write_text(json.dumps(spec, indent=1))
    return [p]


def _traced(problem: PipelinePartition, plan: PipelinePlan, module: Any, inputs: Any) -> list[float] | None:
    """The traced pipeline's bytes per link, or ``None`` when the model cannot be had here (no torch, no module)."""
    if module is None and not problem.model.meta.get("zoo"):
        return None
    try:
        from edgeplan.validation.partition.pipelining import traced_boundary_bytes

        if module is None or inputs is None:
            from edgeplan.validation.partition.execute import _zoo_of

            module, inputs = _zoo_of(problem)
    except ImportError:
        return None
    return traced_boundary_bytes(problem, plan, module, inputs)


__all__ = [
    "SPEC_FORMAT",
    "SPEC_VERSION",
    "export_pipeline_spec",
    "export_split_spec",
    "load_split_spec",
    "pipelining_split_spec",
    "plan_document_with_metrics",
    "save_plan_with_metrics",
    "split_spec",
]
