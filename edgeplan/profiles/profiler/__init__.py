r"""Profile a real torch model into a :class:`~edgeplan.profiles.model.ModelProfile`.

Two tracers
-----------
``method="export"`` (the default when it works): ``torch.export.export(module, args, strict=False)`` gives
an ATen graph whose nodes carry the ``nn_module_stack`` they ran in. Each op node is assigned to a block
(the module chosen by ``granularity`` that contains it); ops outside every block ("glue") without FLOPs
join the next block; runs of view-only ops do too. Nodes that depend on no user input (causal masks,
position ids, rotary tables) are *replicated* into every block that reads them, as a split deployment
recomputes them, so they never show up as transfers. Each block becomes its own ``fx.GraphModule`` and is
timed alone on the inputs it received in a real forward pass, which is how a partitioned model runs.

``method="hooks"``: forward pre/post hooks on the chosen modules time each block in place; a dispatch
mode tracks which block produced each tensor (through glue ops) to recover the DAG's edges. Glue ops are
not inside any block, so their FLOPs and time are reported in ``meta`` (``glue_flops``) and the
additivity error; memory traffic and training memory are not measured (``meta["not_measured"]``).
``method="auto"`` tries export and falls back to hooks with a warning.

Counts and timing
-----------------
FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode` (2 per multiply-accumulate of
matmul/conv/attention; causal masking not discounted), with two corrections of upstream: CPU flash
attention is counted, and the weight gradient of grouped/depthwise convolutions is divided by the group
count. Backward FLOPs per op node are counted by replaying the op forward and backward on FakeTensors (no
arithmetic) under the counter, with ``requires_grad`` on the inputs that depend on parameters (so the
first layer computes no input gradient). Bytes come from the tensors.

Times: ``warmup`` untimed rounds, then ``repeats`` rounds; each round runs the eager model, the exported
graph whole, then every block in topological order (interleaved, so drift hits all alike); medians are
kept (CUDA events on GPU). The measurement's ``whole_time_s`` is the exported graph run whole (the same
executor as the blocks, so :math:`\sum_v t_v / t_{\rm whole} - 1`, the additivity error, isolates the cost
of splitting); the eager time is in ``meta["eager_whole_time_s"]``. The recomputation of replicated nodes is
timed per block (``replicated_time_s``). With ``method="hooks"`` the whole time is the eager call and
block times are taken in place. On CUDA, each block's parameter copy from pinned host memory is timed
too (``h2d_time_s``, SLIDE's :math:`V_1`).

Granularity
-----------
``"auto"``: repeated units (items of a ``ModuleList``/``Sequential`` of >= 2 modules of one class, e.g.
transformer layers, ResNet blocks, MobileNetV2 inverted residuals; a unit that only wraps another repeated
container is expanded, e.g. ResNet stages) plus every maximal module subtree without such units (stems,
embeddings, heads); a model without repeated units falls back to ``"leaf"``. An ``int`` d groups by module
path prefix of d components; ``"leaf"`` uses leaf modules; a list of module names is used as is.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree

from edgeplan.errors import ProfileError
from edgeplan.profiles.model import Measurement, ModelProfile
from edgeplan.profiles.profiler._common import (
    _DTYPE_NAMES,
    _Clock,
    _nbytes,
    _progress,
    _stats,
    block_modules,
    flop_counter,
)
from edgeplan.profiles.profiler._export import _profile_export
from edgeplan.profiles.profiler._hooks import _profile_hooks, _time_hooks, copy_times
from edgeplan.profiles.profiler.probes import calibration_probes


def _to(x: Any, device: torch.device) -> Any:
    return pytree.tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, x)


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProfileError(f"`{name}` = {value!r}; expected an integer >= {minimum}")
    return value


def torch_device(device: Any) -> torch.device:
    """``torch.device(device)``, available here, or a :class:`ProfileError` naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ProfileError(f"`device` = {device!r} is not a torch device ({exc})") from exc
    if dev.type != "cpu":
        backend = getattr(torch, dev.type, None)
        if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
            raise ProfileError(f"`device` = {device!r} is not available on this machine")
    return dev


def profile_model(module: torch.nn.Module, example_inputs: Any, *, example_kwargs: dict[str, Any] | None = None,
                  name: str | None = None, granularity: Any = "auto", method: str = "auto",
                  device: str | torch.device = "cpu", device_name: str | None = None, repeats: int = 5,
                  warmup: int = 1, timing: bool = True, backward: bool = True, batch_size: int | None = None,
                  num_threads: int | None = None, progress: bool | None = None) -> ModelProfile:
    """Trace, count and time ``module`` on ``example_inputs`` (see the module docstring).

    Length: most of the body validates and normalises its thirteen arguments before the trace (each error
    names its argument); the work itself is in the traced/hooked helpers.

    Parameters
    ----------
    module
        The model; it is moved to ``device`` and profiled in eval mode (its mode is restored afterwards).
    example_inputs
        A tensor or a tuple of positional inputs, batch first; ``example_kwargs`` are keyword inputs.
    name
        Profile name (default: the module's class name).
    granularity
        ``"auto"``, ``"leaf"``, a module depth (int) or a list of module names.
    method
        ``"auto"`` (export, falling back to hooks), ``"export"`` or ``"hooks"``.
    device, device_name
        Where to run (``"cpu"``, ``"cuda:0"``); the measurement is keyed by ``device_name`` (default: str of
        ``device``).
    repeats, warmup
        Timed and untimed rounds; ``timing=False`` skips timing (FLOPs and bytes only).
    backward
        Count backward FLOPs (one extra forward+backward per FLOP-carrying op).
    batch_size
        Samples in the example inputs (default: the first dimension of the first input tensor); per-sample
        quantities divide by it.
    num_threads
        CPU threads torch may use while profiling (e.g. 1 to emulate a single edge core); restored after.
        Default: torch's current setting. Recorded in ``meta["threads"]``.
    progress
        Show tqdm progress bars (``None``: only on a terminal).
    """
    if not isinstance(module, torch.nn.Module):
        raise ProfileError(f"`module` = {type(module).__name__}; expected a torch.nn.Module")
    if method not in ("auto", "export", "hooks"):
        raise ProfileError(f"`method` = {method!r}; expected one of 'auto', 'export', 'hooks'")
    _check_count("repeats", repeats, 1)
    _check_count("warmup", warmup, 0)
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    kwargs = dict(example_kwargs or {})
    tensors = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    if not tensors:
        raise ProfileError("`example_inputs` holds no tensor; expected at least one input tensor")
    B = batch_size if batch_size is not None else (int(tensors[0].shape[0]) if tensors[0].dim() else 1)
    _check_count("batch_size", B, 1)
    if num_threads is not None:
        _check_count("num_threads", num_threads, 1)
    dev = torch_device(device)
    was_training = module.training
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    module.to(dev).eval()
    args, kwargs = _to(args, dev), _to(kwargs, dev)
    blocks = block_modules(module, granularity)
    try:
        struct, runners, run_graph, run_consts, calls = None, None, None, None, None
        if method in ("auto", "export"):
            try:
                struct, runners, run_graph, run_consts = _profile_export(module, args, kwargs, blocks=blocks,
                                                                         backward=backward, progress=progress)
            except Exception as exc:
                if method == "export":
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                    raise ProfileError(f"torch.export failed on `{type(module).__name__}`: {first}; expected an "
                                       "exportable model (try method='hooks')") from exc
                warnings.warn(f"torch.export failed ({type(exc).__name__}: {str(exc)[:200]}); profiling with "
                              "forward hooks instead", RuntimeWarning, stacklevel=2)
        if struct is None:
            struct, calls = _profile_hooks(module, args, kwargs, blocks=blocks, backward=backward, progress=progress)
        meta = dict(struct.pop("meta"))
        state = struct.pop("state")
        L = len(struct["block_names"])
        params = [p for p in module.parameters()]
        pdtype = _DTYPE_NAMES.get(params[0].dtype, "fp32") if params else "fp32"
        float_ins = [t for t in tensors if t.is_floating_point()]
        adtype = _DTYPE_NAMES.get(float_ins[0].dtype, pdtype) if float_ins else pdtype
        meta.update(granularity=str(granularity), batch_size=B, torch=torch.__version__,
                    threads=torch.get_num_threads(), input_shapes=[list(t.shape) for t in tensors], device=str(dev))
        measurement = None
        if timing:
            clock = _Clock(dev)
            replicated, consts_once = None, None
            if runners is not None:
                block_t, rep_t = np.zeros((repeats, L)), np.zeros((repeats, L))
                whole_t, graph_t, const_t = np.zeros(repeats), np.zeros(repeats), np.zeros(repeats)
                bar = _progress(warmup + repeats, "time blocks", progress)
                with torch.no_grad():
                    for r in range(warmup + repeats):
                        tw = clock.time(lambda: module(*args, **kwargs))
                        tg = clock.time(run_graph)
                        row = [clock.time(prep()) for prep, _ in runners]
                        rep = [clock.time(cp()) if cp is not None else 0.0 for _, cp in runners]
                        tc = clock.time(run_consts()) if run_consts is not None else 0.0
                        if r >= warmup:
                            i = r - warmup
                            block_t[i], rep_t[i], whole_t[i], graph_t[i], const_t[i] = row, rep, tw, tg, tc
                        bar.update()
                bar.close()
                meta["eager_whole_time_s"] = float(np.median(whole_t))
                whole_t = graph_t      # same executor as the blocks: the error isolates the cost of splitting
                replicated, consts_once = np.median(rep_t, axis=0), float(np.median(const_t))
                method_used = "export"
            else:
                block_t, whole_t = _time_hooks(module, args, kwargs, calls, dev, warmup, repeats, progress)
                method_used = "hooks"
            h2d = None
            if dev.type == "cuda":          # SLIDE's V1: host-to-GPU copy of each block's weights
                h2d = np.median(copy_times(state, dev, warmup=warmup, repeats=repeats), axis=0)
            med, iqr = _stats(block_t)
            wmed, wiqr = _stats(whole_t[:, None])
            measurement = Measurement(device=device_name or str(dev), batch_size=B, dtype=adtype, block_time_s=med,
                                      whole_time_s=float(wmed[0]), repeats=repeats, block_time_iqr_s=iqr,
                                      whole_time_iqr_s=float(wiqr[0]), method=method_used,
                                      replicated_time_s=replicated, constants_time_s=consts_once,
                                      h2d_time_s=h2d)
        prof = ModelProfile(
            name=name or type(module).__name__, block_names=struct["block_names"], block_kinds=struct["block_kinds"],
            fwd_flops=struct["fwd_flops"] / B, bwd_flops=struct["bwd_flops"] / B, num_params=struct["num_params"],
            out_bytes=struct["out_bytes"] / B, edges=struct["edges"], edge_bytes=struct["edge_bytes"] / B,
            input_bytes=sum(_nbytes(t) for t in tensors) / B, input_consumers=struct["input_consumers"],
            buffer_bytes=struct["buffer_bytes"], mem_bytes=struct["mem_bytes"] / B, num_ops=struct["num_ops"],
            saved_bytes=struct.get("saved_bytes", np.zeros(L)) / B,
            kind_flops={k: v / B for k, v in struct["kind_flops"].items()}, param_dtype=pdtype, act_dtype=adtype,
            meta=meta)
        return prof.with_measurement(measurement) if measurement is not None else prof
    finally:
        module.train(was_training)
        torch.set_num_threads(old_threads)


__all__ = ["block_modules", "calibration_probes", "copy_times", "flop_counter", "profile_model"]
