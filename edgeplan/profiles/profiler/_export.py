"""The ``torch.export`` tracer: per-node facts, grouping into blocks, per-block sub-graphs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree

from edgeplan.errors import ProfileError
from edgeplan.profiles.profiler._common import (
    _MATMUL_NAMES,
    _OP_TO_KIND,
    _TRIVIAL,
    _module_kind,
    _nbytes,
    _op_name,
    _progress,
    flop_counter,
)


class _Graph:
    """Per-node facts of an exported graph, computed by running it once on real inputs."""

    def __init__(self, ep: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, backward: bool,
                 progress: bool | None) -> None:
        self.ep = ep
        gm = ep.graph_module
        self.nodes = list(gm.graph.nodes)
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        spec_of = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}
        values = ep._graph_module_flat_inputs(args, kwargs)     # parameters, buffers, constants, user inputs
        if len(values) != len(placeholders):
            raise ProfileError(f"the exported graph has {len(placeholders)} placeholders for {len(values)} values; "
                               "expected one value per placeholder")
        self.kind_of_placeholder: dict[Any, str] = {}
        env: dict[Any, Any] = {}
        for n, v in zip(placeholders, values, strict=True):
            spec = spec_of.get(n.name)
            kind = spec.kind.name if spec is not None else "USER_INPUT"
            if kind not in ("USER_INPUT", "PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                raise ProfileError(f"placeholder `{n.name}` of kind {kind} is not supported by the export profiler")
            if kind == "USER_INPUT" and not isinstance(v, torch.Tensor):
                kind = "CONSTANT_ARG"           # a non-tensor input (a float, a flag): specialized, not data
            self.kind_of_placeholder[n] = kind
            env[n] = v
        # data dependence on user inputs, and whether a value needs a gradient in training
        self.dep: dict[Any, bool] = {}
        self.grad: dict[Any, bool] = {}
        for n in self.nodes:
            if n.op == "placeholder":
                self.dep[n] = self.kind_of_placeholder[n] == "USER_INPUT"
                self.grad[n] = self.kind_of_placeholder[n] == "PARAMETER"
            else:
                ins = n.all_input_nodes
                self.dep[n] = any(self.dep.get(i, False) for i in ins)
                self.grad[n] = any(self.grad.get(i, False) for i in ins)
        self.flops: dict[Any, float] = {}
        self.bwd_flops: dict[Any, float] = {}
        self.kind: dict[Any, str] = {}
        self.trivial: dict[Any, bool] = {}
        self.mem: dict[Any, float] = {}
        self.bwd_estimated = 0
        self.output_nodes: list[Any] = []
        calls = [n for n in self.nodes if n.op == "call_function"]
        counter = flop_counter()
        bar = _progress(len(calls), "count FLOPs", progress)
        with torch.no_grad(), counter:
            for n in self.nodes:
                if n.op == "get_attr":
                    env[n] = getattr(gm, n.target)
                elif n.op == "call_function":
                    node_args, node_kwargs = _fetch(n, env)
                    before = counter.get_total_flops()
                    env[n] = n.target(*node_args, **node_kwargs)
                    self.flops[n] = float(counter.get_total_flops() - before)
                    bar.update()
                elif n.op == "output":
                    self.output_nodes = [a for a in pytree.tree_leaves(n.args) if isinstance(a, torch.fx.Node)]
        bar.close()
        self.env = env
        for n in calls:
            name = _op_name(n.target)
            self.trivial[n] = name in _TRIVIAL or name.startswith("_assert")
            kind = _OP_TO_KIND.get(name, "elementwise")
            if name in _MATMUL_NAMES:
                operand_is_weight = any(self.kind_of_placeholder.get(i) == "PARAMETER" or
                                        (not self.dep.get(i, True) and self.grad.get(i, False))
                                        for i in n.all_input_nodes)
                kind = "linear" if operand_is_weight else "matmul"
            elif kind == "conv" and _grouped(env, n):
                kind = "dwconv"
            elif kind == "elementwise":
                stack = n.meta.get("nn_module_stack") or {}
                if stack:
                    kind = _module_kind(str(list(stack.values())[-1][1])) or kind
            self.kind[n] = kind
            if not self.flops[n] and not self.trivial[n]:
                self.mem[n] = float(sum(_nbytes(env[i]) for i in n.all_input_nodes
                                        if self.kind_of_placeholder.get(i) not in ("PARAMETER", "BUFFER"))
                                    + _nbytes(env[n]))
        if backward:
            self._count_backward([n for n in calls if self.flops[n] > 0], progress)

    def _count_backward(self, nodes: list[Any], progress: bool | None) -> None:
        """Backward FLOPs of each op, replayed on FakeTensors (shapes only: no arithmetic is done)."""
        from torch._subclasses.fake_tensor import FakeTensorMode

        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        bar = _progress(len(nodes), "count backward FLOPs", progress)
        for n in nodes:
            def leaf(x: Any) -> Any:
                if not isinstance(x, torch.fx.Node):
                    return x
                v = self.env[x]
                if not isinstance(v, torch.Tensor):
                    return v
                f = fake_mode.from_tensor(v.detach())
                return f.requires_grad_(True) if self.grad.get(x, False) and f.is_floating_point() else f

            try:
                args = torch.fx.node.map_aggregate(n.args, leaf)
                kwargs = torch.fx.node.map_aggregate(n.kwargs, leaf)
                counter = flop_counter()
                with fake_mode, torch.enable_grad():
                    out = n.target(*args, **kwargs)
                    outs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]
                    with counter:
                        if outs:
                            torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
                self.bwd_flops[n] = float(counter.get_total_flops())
            except Exception:          # an op autograd cannot replay in isolation: the standard 2x estimate
                self.bwd_flops[n] = 2.0 * self.flops[n] if self.grad.get(n, False) else 0.0
                self.bwd_estimated += 1
            bar.update()
        bar.close()


def _saved_tensors(g: _Graph, b: int, members: list[Any], outs: list[Any], block_of: dict[Any, int],
                   saved: dict[Any, tuple[int, int]]) -> None:
    """Record the storages autograd saves for backward when block ``b`` runs in training (FakeTensors).

    Each storage is charged to the block that produced it (a block's input saved by its consumer is the
    producer's activation), so that summing over blocks counts every activation once; parameters and buffers
    are not activations and are skipped.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    sub, ext = _subgraph(members, outs)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    owner_of: dict[int, Any] = {}
    fakes = []
    for i in ext:
        v = g.env[i]
        if isinstance(v, torch.Tensor):
            f = fake_mode.from_tensor(v.detach())
            if g.grad.get(i, False) and f.is_floating_point():
                f.requires_grad_(True)
            owner_of[f.untyped_storage()._cdata] = i
            fakes.append(f)
        else:
            fakes.append(v)
    packed: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(t)
        return t

    try:
        with fake_mode, torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            result = sub(*fakes)
    except Exception:                      # an op without fake support: leave this block's memory at 0
        return
    for n, t in zip(outs, result, strict=False):
        if isinstance(t, torch.Tensor):
            owner_of.setdefault(t.untyped_storage()._cdata, n)
    for t in packed:
        if not isinstance(t, torch.Tensor):
            continue
        storage = t.untyped_storage()
        node = owner_of.get(storage._cdata)
        if node is not None and g.kind_of_placeholder.get(node) in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
            continue
        if node is not None:
            key, owner = ("node", node), block_of.get(node, b)
        else:
            key, owner = ("local", b, storage._cdata), b
        saved.setdefault(key, (owner, int(storage.nbytes())))


def _grouped(env: dict[Any, Any], n: Any) -> bool:
    """Whether a (non-transposed) convolution node has groups > 1: input channels != weight's in-channels."""
    if len(n.args) < 2 or "transpose" in _op_name(n.target):
        return False
    x, w = env.get(n.args[0]), env.get(n.args[1])
    transposed = n.args[6] if _op_name(n.target) == "convolution" and len(n.args) > 6 else False
    return (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and not transposed and x.dim() >= 2
            and w.dim() >= 2 and x.shape[1] != w.shape[1])


def _fetch(n: Any, env: dict[Any, Any]) -> tuple[Any, Any]:
    return (torch.fx.node.map_arg(n.args, lambda a: env[a]), torch.fx.node.map_arg(n.kwargs, lambda a: env[a]))


def _block_keys(g: _Graph, blocks: list[str]) -> dict[Any, str | None]:
    """Block key of each data-dependent call node (None: glue)."""
    chosen = set(blocks)
    keys: dict[Any, str | None] = {}
    for n in g.nodes:
        if n.op != "call_function" or not g.dep[n]:
            continue
        paths = [str(v[0]).split("@")[0] for v in (n.meta.get("nn_module_stack") or {}).values()]
        keys[n] = next((p for p in paths if p in chosen), "" if "" in chosen else None)
    return keys


def _group(g: _Graph, keys: dict[Any, str | None]) -> list[tuple[str, list[Any]]]:
    """Blocks as (name, nodes in graph order).

    Consecutive nodes with the same key form runs. Glue runs without FLOPs and runs of view-only ops are
    merged: into their producer when exactly one block produces their inputs (a post-processing step such
    as scaling, adding a position table or slicing the CLS token; this adds no edge into the producer, so
    the block graph stays acyclic), otherwise into the next block (which comes after all their producers).
    """
    runs: list[list[Any]] = []
    for n, k in keys.items():
        if runs and runs[-1][0] == k:
            runs[-1][1].append(n)
        else:
            runs.append([k, [n]])
    mergeable = [(k is None and not any(g.flops[x] for x in ns)) or all(g.trivial[x] for x in ns) for k, ns in runs]
    blocks: list[list[Any]] = []        # [key, nodes]
    run_block: list[int | None] = []
    for (k, ns), m in zip(runs, mergeable, strict=True):
        if m:
            run_block.append(None)
            continue
        if k is None:
            owners = [str(list((x.meta.get("nn_module_stack") or {"": ("",)}).values())[-1][0]) for x in ns]
            k = (max(set(owners), key=owners.count) or "<root>") + ":glue"
        if blocks and blocks[-1][0] == k and run_block and run_block[-1] == len(blocks) - 1:
            blocks[-1][1].extend(ns)
        else:
            blocks.append([k, list(ns)])
        run_block.append(len(blocks) - 1)
    if not blocks:
        return [("<root>", [n for _, ns in runs for n in ns])]
    block_of = {n: run_block[i] for i, (_, ns) in enumerate(runs) if run_block[i] is not None for n in ns}
    for i, ((_, ns), m) in enumerate(zip(runs, mergeable, strict=True)):
        if not m:
            continue
        inside = set(ns)
        producers = {block_of[x] for n in ns for x in n.all_input_nodes if x not in inside and x in block_of}
        if len(producers) == 1:
            target = producers.pop()
        else:
            later = [b for b in run_block[i + 1:] if b is not None]
            target = later[0] if later else len(blocks) - 1
        for n in ns:
            block_of[n] = target
        blocks[target][1].extend(ns)
    order = {n: i for i, n in enumerate(g.nodes)}
    seen: dict[str, int] = defaultdict(int)
    out = []
    for k, ns in blocks:
        name = k if seen[k] == 0 else f"{k}@{seen[k]}"
        seen[k] += 1
        out.append((name or "<root>", sorted(ns, key=order.__getitem__)))
    return out


def _profile_export(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, blocks: list[str],
                    backward: bool, progress: bool | None
                    ) -> tuple[dict[str, Any], list[tuple[Callable, Callable | None]], Callable, Callable | None]:
    """Trace, count and build per-block runners.

    Returns the profile fields, per block a ``prepare()`` for the block and one for its replicated
    input-independent part (or ``None``), a callable running the whole exported graph, and a ``prepare()``
    computing all input-independent values once (or ``None``).
    """
    ep = torch.export.export(module, args, kwargs, strict=False)
    g = _Graph(ep, args, kwargs, backward=backward, progress=progress)
    groups = _group(g, _block_keys(g, blocks))
    block_of: dict[Any, int] = {n: b for b, (_, ns) in enumerate(groups) for n in ns}
    const_nodes = {n for n in g.nodes if n.op == "call_function" and not g.dep[n]}
    out_nodes = set(g.output_nodes)
    L = len(groups)
    fwd, bwd, mem, nops = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
    kind_flops: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(L))
    params, buffers = np.zeros(L, dtype=np.int64), np.zeros(L)
    out_b, edge_b = np.zeros(L), defaultdict(float)
    input_consumers: set[int] = set()
    seen_params: set[Any] = set()
    kinds: list[str] = []
    callables: list[tuple[Callable, Callable | None]] = []
    state: list[list[torch.Tensor]] = [[] for _ in range(L)]      # parameters/buffers first used by each block
    saved: dict[Any, tuple[int, int]] = {}                         # storage key -> (owner block, bytes)
    for b, (_, own) in enumerate(groups):
        # replicated input-independent ancestors
        members, consts = block_members(g.nodes, own, const_nodes)
        ext = external_inputs(members)
        for n in members:
            fwd[b] += g.flops[n]
            bwd[b] += g.bwd_flops.get(n, 0.0)
            kind_flops[g.kind[n]][b] += g.flops[n]
            mem[b] += g.mem.get(n, 0.0)
            nops[b] += 0.0 if g.trivial[n] else 1.0
        for i in ext:
            pk = g.kind_of_placeholder.get(i)
            if pk == "USER_INPUT":
                input_consumers.add(b)
            elif pk in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
                if i not in seen_params:
                    seen_params.add(i)
                    state[b].append(g.env[i])
                    if pk == "PARAMETER":
                        params[b] += g.env[i].numel()
                    else:
                        buffers[b] += _nbytes(g.env[i])
            elif i in block_of:
                edge_b[(block_of[i], b)] += _nbytes(g.env[i])
        if fwd[b] > 0:
            kinds.append(max(kind_flops, key=lambda k: kind_flops[k][b]))
        else:
            weights: dict[str, float] = defaultdict(float)
            for n in own:
                if not g.trivial[n]:
                    weights[g.kind[n]] += _nbytes(g.env[n]) + 1.0
            kinds.append(max(weights, key=lambda k: weights[k]) if weights else "other")
        outs = [n for n in own if n in out_nodes or any(block_of.get(u, b) != b for u in n.users)]
        out_b[b] = sum(_nbytes(g.env[n]) for n in outs)
        runner = _runner(g, members, outs)
        if backward:
            _saved_tensors(g, b, members, outs, block_of, saved)
        const_members = [n for n in members if n in consts]
        callables.append((runner, _runner(g, const_members, const_members) if const_members else None))
    edges = sorted(edge_b)
    struct = {
        "block_names": tuple(name for name, _ in groups), "block_kinds": tuple(kinds), "fwd_flops": fwd,
        "bwd_flops": bwd, "num_params": params, "out_bytes": out_b, "buffer_bytes": buffers, "mem_bytes": mem,
        "num_ops": nops,
        "kind_flops": dict(kind_flops), "edges": np.array(edges, dtype=np.int64).reshape(-1, 2),
        "edge_bytes": np.array([edge_b[e] for e in edges]), "input_consumers": sorted(input_consumers),
        "state": state,
        "saved_bytes": np.bincount([o for o, _ in saved.values()], weights=[nb for _, nb in saved.values()],
                                   minlength=L)[:L] if saved else np.zeros(L),
        "meta": {"tracer": "torch.export", "graph_nodes": len(g.nodes), "replicated_nodes": len(const_nodes),
                 "bwd_estimated_nodes": g.bwd_estimated},
    }
    param_vals = [g.env[n] for n in g.nodes if n.op == "placeholder"]
    whole_graph = ep.graph_module

    def run_graph() -> Any:
        return whole_graph(*param_vals)

    all_consts = [n for n in g.nodes if n in const_nodes]
    return struct, callables, run_graph, (_runner(g, all_consts, all_consts) if all_consts else None)


def block_members(nodes: Iterable[Any], own: list[Any], const_nodes: set[Any]) -> tuple[list[Any], set[Any]]:
    """A block's graph nodes in graph order: its ``own`` nodes plus the input-independent (constant) ancestors
    they read, which every block that needs them recomputes (masks, position and rotary tables); and that
    set of replicated constants."""
    consts: set[Any] = set()
    stack = [i for n in own for i in n.all_input_nodes if i in const_nodes]
    while stack:
        c = stack.pop()
        if c not in consts:
            consts.add(c)
            stack.extend(i for i in c.all_input_nodes if i in const_nodes)
    own_set = set(own)
    return [n for n in nodes if n in consts or n in own_set], consts


def external_inputs(members: list[Any]) -> list[Any]:
    """The nodes outside ``members`` that they read, in first-use order (the sub-graph's placeholders)."""
    member_set = set(members)
    ext: list[Any] = []
    for n in members:
        for i in n.all_input_nodes:
            if i not in member_set and i not in ext:
                ext.append(i)
    return ext


def _subgraph(members: list[Any], outs: list[Any]) -> tuple[torch.fx.GraphModule, list[Any]]:
    """The ``fx.GraphModule`` computing ``outs`` from ``members``, and the outside nodes it reads (in order)."""
    ext = external_inputs(members)
    graph = torch.fx.Graph()
    remap = {i: graph.placeholder(f"in{j}") for j, i in enumerate(ext)}
    for n in members:
        remap[n] = graph.node_copy(n, remap.__getitem__)
    graph.output(tuple(remap[n] for n in outs))
    return torch.fx.GraphModule(torch.nn.Module(), graph), ext


def _runner(g: _Graph, members: list[Any], outs: list[Any]) -> Callable[[], Callable[[], Any]]:
    """A ``prepare()`` for the sub-graph of ``members`` fed with the values it read in the traced run."""
    sub, ext = _subgraph(members, outs)
    mutates = any(getattr(getattr(n.target, "_schema", None), "is_mutable", False) for n in members)
    vals = [g.env[i] for i in ext]
    frozen = [g.kind_of_placeholder.get(i) in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR") for i in ext]
    return _block_runner(sub, vals, frozen, mutates)


def _block_runner(sub: torch.fx.GraphModule, vals: list[Any], frozen: list[bool],
                  mutates: bool) -> Callable[[], Callable[[], Any]]:
    """A ``prepare()`` returning the closure to time; blocks that mutate an input get fresh clones."""
    if not mutates:
        def run() -> Any:
            return sub(*vals)

        return lambda: run

    def prepare() -> Callable[[], Any]:   # clone outside the timed region so that repeats see the same data
        fresh = [v if f or not isinstance(v, torch.Tensor) else v.clone() for v, f in zip(vals, frozen, strict=True)]
        return lambda: sub(*fresh)

    return prepare
