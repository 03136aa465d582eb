r"""The ``onnx`` export of partition plans: one ONNX model per stage and a manifest.

``stage{k}.onnx`` per stage (``torch.onnx.export`` of the stage's sub-graph, TorchScript exporter) and
``onnx_stages.json`` naming each stage's inputs and outputs (graph node names, so outputs of one stage are
inputs of a later one). Needs the ``onnx`` package and the torch model: pass ``module=`` and ``inputs=``, or a
profile whose ``meta['zoo']`` names a zoo model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from edgeplan.errors import SolverUnavailableError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.io.export.split_spec import plan_stages
from edgeplan.registry import exporter


def _model_and_inputs(problem: Any, module: Any, inputs: Any) -> tuple[Any, Any]:
    if module is not None and inputs is not None:
        return module, inputs
    from edgeplan.validation.partition.execute import _zoo_of

    return _zoo_of(problem)


def export_onnx_stages(problem: Any, plan: Any, out_dir: Path, *, module: Any = None, inputs: Any = None,
                       opset: int | None = None) -> list[Path]:
    """``stage{k}.onnx`` per stage and ``onnx_stages.json`` (see the module docstring)."""
    if importlib.util.find_spec("onnx") is None:
        raise SolverUnavailableError("the ONNX exporter needs the `onnx` package; install it with `pip install onnx`")
    import onnx
    import torch

    from edgeplan.validation.partition.split import block_graph

    module, inputs = _model_and_inputs(problem, module, inputs)
    bg = block_graph(module, inputs, problem.model)
    paths, manifest = [], []
    for k, st in enumerate(plan_stages(problem, plan)):
        stage = bg.stage(st["blocks"])
        args = tuple(bg.example[n] if n in bg.example else bg.value(n) for n in stage.inputs)
        p = out_dir / f"stage{k}.onnx"
        kw = {"opset_version": opset} if opset is not None else {}
        with torch.no_grad():
            torch.onnx.export(stage.as_module(), args, str(p), dynamo=False, input_names=list(stage.inputs),
                              output_names=list(stage.outputs), **kw)
        onnx.checker.check_model(str(p))
        paths.append(p)
        manifest.append({"file": p.name, "blocks": st["blocks"], "inputs": list(stage.inputs),
                         "outputs": list(stage.outputs)})
    m = out_dir / "onnx_stages.json"
    m.write_text(json.dumps({"model": problem.model.name, "model_outputs": list(bg.output_names()),
                             "stages": manifest}, indent=1))
    return [*paths, m]


@exporter("onnx", plan=SplitPlan)
def export_onnx_split(problem: SplitInference, plan: SplitPlan, out_dir: Path, **kw: Any) -> list[Path]:
    """ONNX sub-model per tier (torch.onnx.export of each tier's sub-graph) and a manifest."""
    return export_onnx_stages(problem, plan, out_dir, **kw)


@exporter("onnx", plan=PipelinePlan)
def export_onnx_pipeline(problem: PipelinePartition, plan: PipelinePlan, out_dir: Path, **kw: Any) -> list[Path]:
    """ONNX sub-model per pipeline stage and a manifest."""
    return export_onnx_stages(problem, plan, out_dir, **kw)


__all__ = ["export_onnx_pipeline", "export_onnx_split", "export_onnx_stages"]
