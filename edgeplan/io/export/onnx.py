r"""The ``onnx`` export of partition plans: one ONNX model per stage and a manifest, and a runner that chains
the stages in ONNX Runtime.

``stage{k}.onnx`` per stage (``torch.onnx.export`` of the stage's sub-graph, TorchScript exporter) and
``onnx_stages.json`` naming the model's inputs (in call order), each stage's inputs and outputs (graph node
names, so outputs of one stage are inputs of a later one) and the model's outputs. Needs the ``onnx`` package
and the torch model: pass ``module=`` and ``inputs=`` (any model a profile was made from with
``profile_model(module, inputs)``), or a profile whose ``meta['zoo']`` names a zoo model.

:func:`run_onnx_stages` is the consumer: it loads every stage into an ``onnxruntime.InferenceSession`` and runs
them in order, each on the values the earlier stages produced, as the devices of the plan would; the chained
output equals the torch model's (``tests/partition/test_onnx_runtime.py``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from edgeplan.errors import PlanError, SolverUnavailableError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.formulations.partition.stages import plan_stages
from edgeplan.registry import exporter


def _model_and_inputs(problem: Any, module: Any, inputs: Any) -> tuple[Any, Any]:
    if module is not None and inputs is not None:
        return module, inputs
    from edgeplan.validation.partition.execute import _zoo_of

    return _zoo_of(problem)


def export_onnx_stages(problem: Any, plan: Any, out_dir: Path, *, module: Any = None, inputs: Any = None,
                       opset: int | None = None) -> list[Path]:
    """``stage{k}.onnx`` per stage and ``onnx_stages.json`` (see the module docstring).

    Parameters
    ----------
    problem, plan
        A split or pipeline problem and its plan.
    out_dir
        The folder written into.
    module, inputs
        The torch model the profile was made from and its example inputs (default: the zoo model the
        profile's ``meta["zoo"]`` names).
    opset
        The ONNX opset (default: torch's).

    Returns
    -------
    list of Path
        The stage models and the manifest.
    """
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
    m.write_text(json.dumps({"model": problem.model.name, "model_inputs": list(bg.example),
                             "model_outputs": list(bg.output_names()), "stages": manifest}, indent=1))
    return [*paths, m]


def run_onnx_stages(out_dir: str | Path, *inputs: Any, providers: Any = None) -> dict[str, Any]:
    """Run an ``onnx`` export in ONNX Runtime, stage after stage; returns ``{output name: numpy array}``.

    Parameters
    ----------
    out_dir
        The folder the ``onnx`` exporter wrote (``onnx_stages.json`` and ``stage{k}.onnx``).
    *inputs
        The model's inputs in call order (tensors or arrays; the manifest's ``model_inputs``).
    providers
        ONNX Runtime execution providers (default: the CPU provider).
    """
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise SolverUnavailableError("running ONNX stages needs onnxruntime; install it with "
                                     "`pip install 'edgeplan[export]'`") from exc
    folder = Path(out_dir)
    manifest = json.loads((folder / "onnx_stages.json").read_text())
    names = manifest.get("model_inputs") or []
    if len(inputs) != len(names):
        raise PlanError(f"`inputs`: {len(inputs)} given; the exported model takes {len(names)} ({names})")
    env = {n: (x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)) for n, x in zip(names, inputs,
                                                                                                   strict=True)}
    for st in manifest["stages"]:
        sess = ort.InferenceSession(str(folder / st["file"]), providers=providers or ["CPUExecutionProvider"])
        feed = {i.name: env[i.name] for i in sess.get_inputs()}  # the exporter may drop inputs a stage ignores
        env.update(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))
    return {n: env[n] for n in manifest["model_outputs"] if n in env}


@exporter("onnx", plan=SplitPlan)
def export_onnx_split(problem: SplitInference, plan: SplitPlan, out_dir: Path, **kw: Any) -> list[Path]:
    """ONNX sub-model per tier (torch.onnx.export of each tier's sub-graph) and a manifest."""
    return export_onnx_stages(problem, plan, out_dir, **kw)


@exporter("onnx", plan=PipelinePlan)
def export_onnx_pipeline(problem: PipelinePartition, plan: PipelinePlan, out_dir: Path, **kw: Any) -> list[Path]:
    """ONNX sub-model per pipeline stage and a manifest."""
    return export_onnx_stages(problem, plan, out_dir, **kw)


__all__ = ["export_onnx_pipeline", "export_onnx_split", "export_onnx_stages", "run_onnx_stages"]
