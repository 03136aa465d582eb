"""The forward-hooks tracer: in-place block timing and tensor-provenance edges."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from edgeplan.errors import ProfileError
from edgeplan.profiles.profiler._common import (
    _MATMUL_NAMES,
    _OP_TO_KIND,
    _Clock,
    _module_kind,
    _nbytes,
    _progress,
    _sync,
    flop_counter,
)


class _Tracker(TorchDispatchMode):
    """Attributes every ATen op to the active block and follows tensor provenance through glue ops."""

    def __init__(self) -> None:
        super().__init__()
        from torch.utils.weak import WeakIdKeyDictionary

        self.active: int | None = None
        self.owner: Any = WeakIdKeyDictionary()
        self.edges: dict[tuple[int, int], float] = defaultdict(float)
        self.seen: set[tuple[int, int, int]] = set()
        self.flops: dict[int, float] = defaultdict(float)          # per block call
        self.ops: dict[int, float] = defaultdict(float)
        self.kind_flops: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        self.glue_flops = 0.0
        self.input_consumers: set[int] = set()
        self.registry = flop_counter().flop_registry

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.registry.get(func.overloadpacket)
        flops = float(formula(*args, **kwargs, out_val=out)) if formula is not None else 0.0
        ins = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        provs = [self.owner.get(t, frozenset()) for t in ins]
        srcs = frozenset().union(*provs)
        if self.active is None:
            self.glue_flops += flops
            tag = srcs
        else:
            b = self.active
            self.flops[b] += flops
            self.ops[b] += 1.0
            name = func.overloadpacket.__name__
            kind = _OP_TO_KIND.get(name, "elementwise")
            if name in _MATMUL_NAMES:
                kind = "linear" if any(not p for p in provs) else "matmul"
            elif kind == "conv" and name == "convolution" and len(args) > 8 and not args[6] and args[8] > 1:
                kind = "dwconv"
            self.kind_flops[kind][b] += flops
            for t, prov in zip(ins, provs, strict=True):
                for s in prov:
                    if s == -1:
                        self.input_consumers.add(b)
                    elif s != b and (id(t), s, b) not in self.seen:
                        self.seen.add((id(t), s, b))
                        self.edges[(s, b)] += _nbytes(t)
            tag = frozenset({b}) if srcs else srcs      # weights (and views of them) stay source-free
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.owner[t] = tag
        return out


def _profile_hooks(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, blocks: list[str],
                   backward: bool, progress: bool | None) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Profile ``blocks`` with forward (and backward) hooks on one run of ``module``.

    Length: the hooks are closures over one shared call record, defined where they are registered.
    """
    mods = {p: module.get_submodule(p) for p in blocks}
    calls: list[tuple[str, Any, Any, Any]] = []      # (path, args, kwargs, output)
    handles = []
    state: dict[str, Any] = {"tracker": None}

    def pre(path: str) -> Callable:
        def hook(mod: Any, a: Any, kw: Any) -> None:
            tr = state["tracker"]
            tr.active = len(calls)
            calls.append((path, _detach(a), _detach(kw), None))
        return hook

    def post(path: str) -> Callable:
        def hook(mod: Any, a: Any, kw: Any, out: Any) -> None:
            tr = state["tracker"]
            i = tr.active
            calls[i] = (*calls[i][:3], out)
            tr.active = None
        return hook

    for p, m in mods.items():
        handles.append(m.register_forward_pre_hook(pre(p), with_kwargs=True))
        handles.append(m.register_forward_hook(post(p), with_kwargs=True))
    tracker = _Tracker()
    state["tracker"] = tracker
    try:
        for t in pytree.tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor):
                tracker.owner[t] = frozenset({-1})
        with torch.enable_grad(), tracker:
            module(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    n = len(calls)
    if n == 0:
        raise ProfileError(f"`granularity` selected modules {blocks[:3]}... that never ran; expected modules "
                           "called in forward")
    counts: dict[str, int] = defaultdict(int)
    names = []
    for path, *_ in calls:
        names.append(path if counts[path] == 0 else f"{path}@{counts[path]}")
        counts[path] += 1
    out_bytes = np.zeros(n)
    params = np.zeros(n, dtype=np.int64)
    buffers = np.zeros(n)
    seen: set[int] = set()
    bwd = np.zeros(n)
    kinds = []
    bar = _progress(n, "count backward FLOPs", progress)
    state: list[list[torch.Tensor]] = [[] for _ in range(n)]
    for i, (path, a, kw, out) in enumerate(calls):
        out_bytes[i] = _nbytes(out)
        for p in mods[path].parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params[i] += p.numel()
                state[i].append(p)
        for buf in mods[path].buffers():
            if id(buf) not in seen:
                seen.add(id(buf))
                buffers[i] += _nbytes(buf)
                state[i].append(buf)
        if backward and tracker.flops[i] > 0:
            bwd[i] = _replay_backward(mods[path], a, kw)
        kf = {k: v.get(i, 0.0) for k, v in tracker.kind_flops.items()}
        kinds.append(max(kf, key=lambda k: kf[k]) if tracker.flops[i] > 0 else
                     (_module_kind(type(mods[path]).__name__) or "other"))
        bar.update()
    bar.close()
    edges = sorted(e for e in tracker.edges if e[0] < e[1])
    struct = {
        "block_names": tuple(names), "block_kinds": tuple(kinds),
        "fwd_flops": np.array([tracker.flops.get(i, 0.0) for i in range(n)]),
        "bwd_flops": bwd, "num_params": params, "out_bytes": out_bytes, "buffer_bytes": buffers,
        "mem_bytes": np.zeros(n), "num_ops": np.array([tracker.ops.get(i, 0.0) for i in range(n)]),
        "kind_flops": {k: np.array([v.get(i, 0.0) for i in range(n)]) for k, v in tracker.kind_flops.items()},
        "edges": np.array(edges, dtype=np.int64).reshape(-1, 2),
        "edge_bytes": np.array([tracker.edges[e] for e in edges]),
        "input_consumers": sorted(tracker.input_consumers) or [0], "state": state,
        "meta": {"tracer": "hooks", "glue_flops": tracker.glue_flops,
                 "not_measured": ["mem_bytes", "saved_bytes", "replicated_time_s"],
                 "unattributed_params": int(sum(p.numel() for p in module.parameters() if id(p) not in seen))},
    }
    return struct, [(c[0], mods[c[0]]) for c in calls]


def _detach(x: Any) -> Any:
    return pytree.tree_map(lambda t: t.detach().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor)
                           and t.is_floating_point() else (t.detach() if isinstance(t, torch.Tensor) else t), x)


def _replay_backward(mod: torch.nn.Module, a: Any, kw: Any) -> float:
    counter = flop_counter()
    with torch.enable_grad():
        out = mod(*a, **kw)
        outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]
        with counter:
            if outs:
                torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
    return float(counter.get_total_flops())


def copy_times(state: list[list[torch.Tensor]], device: torch.device, *, warmup: int, repeats: int) -> np.ndarray:
    """(repeats, L) time to copy each block's parameters and buffers from host memory to ``device``.

    Host copies are pinned when CUDA is available (as a loader would); each block's copy is timed with
    :class:`_Clock` (CUDA events on GPU). This is SLIDE's :math:`V_1` per layer.
    """
    pin = torch.cuda.is_available()
    host = [[t.detach().to("cpu", copy=True) for t in ts] for ts in state]
    if pin:
        host = [[t.pin_memory() for t in ts] for ts in host]
    clock = _Clock(device)
    out = np.zeros((repeats, len(host)))
    for r in range(warmup + repeats):
        for b, ts in enumerate(host):
            if ts:
                t = clock.time(lambda ts=ts: [x.to(device, non_blocking=pin, copy=True) for x in ts])
                if r >= warmup:
                    out[r - warmup, b] = t
    return out


def _time_hooks(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                calls: list[tuple[str, Any]], device: torch.device, warmup: int, repeats: int,
                progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(calls)
    times = np.zeros((repeats, n))
    whole = np.zeros(repeats)
    state = {"i": 0, "t0": 0.0, "row": None}
    clock = _Clock(device)
    handles = []

    def pre(mod: Any, a: Any) -> None:
        _sync(device)
        state["t0"] = time.perf_counter()

    def post(mod: Any, a: Any, out: Any) -> None:
        _sync(device)
        if state["row"] is not None and state["i"] < n:
            state["row"][state["i"]] = time.perf_counter() - state["t0"]
        state["i"] += 1

    for m in {id(m): m for _, m in calls}.values():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    bar = _progress(warmup + repeats, "time (hooks)", progress)
    try:
        with torch.no_grad():
            for r in range(warmup + repeats):
                row = np.zeros(n)
                state.update(i=0, row=row)
                t = clock.time(lambda: module(*args, **kwargs))
                if state["i"] != n:
                    raise ProfileError(f"the model ran {state['i']} block calls in a timing run but {n} when traced; "
                                       "expected the same calls every forward")
                if r >= warmup:
                    times[r - warmup], whole[r - warmup] = row, t
                bar.update()
    finally:
        for h in handles:
            h.remove()
        bar.close()
    return times, whole
