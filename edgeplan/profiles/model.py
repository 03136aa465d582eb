r"""Model profiles: a DAG of blocks with FLOPs, parameters, activation sizes and measured latencies.

A :class:`ModelProfile` lists :math:`L` blocks in a topological order (every edge :math:`(u, w)` has
:math:`u < w`); a chain is the special case :math:`E = \{(i, i+1)\}`. Per block :math:`v` it stores, **per
sample**: forward FLOPs :math:`W^f_v`, backward FLOPs :math:`W^b_v`, the bytes of its output activations
:math:`a_v` (distinct tensors used by later blocks or returned), and the parameter count :math:`n_v`
(parameter bytes in dtype :math:`d` are :math:`n_v \cdot \mathrm{bytes}(d)`). FLOPs follow
:mod:`torch.utils.flop_counter`: 2 per multiply-accumulate of matmul/conv/attention ops; element-wise ops
(norms, activations, adds) are not counted as FLOPs but their memory traffic is kept in ``mem_bytes``.

Cuts
----
For a device set :math:`S` (the rest runs elsewhere) the bytes that cross are

.. math:: C(S) = \sum_{u \in S} \min\Big(a_u,\ \sum_{(u,w)\in E,\ w\notin S} e_{uw}\Big)
          + a_{\rm in}\,[\exists\, w \notin S \text{ reading the input}],

with :math:`e_{uw}` the per-edge bytes; it is exact when each block has a single output tensor and an upper
bound otherwise. A prefix cut after :math:`k` blocks is :math:`S = \{0..k-1\}`. Block :math:`k` is an
**articulation point** when the prefix cut after it is crossed by :math:`k`'s output only: the model is then
a chain of segments between articulation points (COACH's decomposition, SLIDE's "layers").
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of, parse_json, read_text
from edgeplan.errors import ProfileError
from edgeplan.profiles.devices import DTYPE_BYTES
from edgeplan.profiles.measurement import Measurement

OP_KINDS = ("conv", "dwconv", "linear", "matmul", "attention", "embedding", "norm", "pool", "elementwise", "other")
"""Op kinds of blocks (and of per-kind FLOPs): the dominant kind names a block. ``dwconv`` is a grouped or
depthwise convolution (far lower FLOP/s than a dense one), ``linear`` a matmul with a weight operand,
``matmul`` one between activations."""

FORMAT = "edgeplan.model_profile"
FORMAT_VERSION = 1


def _vec(name: str, value: Any, n: int, *, dtype: Any = float) -> np.ndarray:
    return as_array(name, value, shape=(n,), dtype=dtype, min_value=0, error=ProfileError)



@dataclass(frozen=True, slots=True, eq=False)
class ModelProfile:
    """A DAG of blocks in topological order (see the module docstring for the quantities and units).

    Attributes
    ----------
    name
        Model name.
    block_names
        (L,) unique qualified names (module paths such as ``"encoder.layer.3"``).
    block_kinds
        (L,) dominant op kind of each block (one of :data:`OP_KINDS`).
    fwd_flops, bwd_flops
        (L,) forward / backward FLOPs per sample (backward: gradients w.r.t. inputs that need them and
        w.r.t. parameters, as autograd runs them).
    num_params
        (L,) parameters first used by each block (tied weights are counted once, at their first use).
    out_bytes
        (L,) bytes per sample of the block's output activations (``act_dtype``).
    edges
        (E, 2) data dependencies ``(u, w)`` with ``u < w``.
    edge_bytes
        (E,) bytes per sample flowing along each edge.
    input_bytes
        Bytes per sample of the model's inputs.
    input_consumers
        Indices of the blocks that read the model's inputs.
    buffer_bytes
        (L,) bytes of buffers/constants (e.g. BatchNorm statistics) first used by each block.
    mem_bytes
        (L,) bytes per sample read and written by the block's zero-FLOP ops (norms, activations, adds).
    num_ops
        (L,) ATen ops the block runs (view-only ops excluded): drives per-op dispatch overhead at small batch.
    saved_bytes
        (L,) bytes per sample that autograd keeps for the backward pass in training, charged to the block
        that produced each tensor (so the sum over blocks is the step's activation memory; weights excluded).
    kind_flops
        Forward FLOPs per sample split by op kind: mapping kind -> (L,) array summing to ``fwd_flops``.
    param_dtype, act_dtype
        Dtypes of parameters and activations as profiled.
    measurements
        Measured latencies, at most one per (device, batch size, dtype).
    meta
        JSON-serializable provenance (tracer, torch version, input shapes ...).
    """

    name: str
    block_names: tuple[str, ...]
    block_kinds: tuple[str, ...]
    fwd_flops: np.ndarray
    bwd_flops: np.ndarray
    num_params: np.ndarray
    out_bytes: np.ndarray
    edges: np.ndarray
    edge_bytes: np.ndarray
    input_bytes: float = 0.0
    input_consumers: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    buffer_bytes: np.ndarray | None = None
    mem_bytes: np.ndarray | None = None
    num_ops: np.ndarray | None = None
    saved_bytes: np.ndarray | None = None
    kind_flops: Mapping[str, np.ndarray] | None = None
    param_dtype: str = "fp32"
    act_dtype: str = "fp32"
    measurements: tuple[Measurement, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"`name` = {self.name!r}; expected a non-empty string")
        names = tuple(self.block_names)
        n = len(names)
        if n == 0:
            raise ProfileError("`block_names` is empty; expected at least one block")
        if any(not isinstance(s, str) or not s for s in names):
            raise ProfileError(f"`block_names` = {names!r}; expected non-empty strings")
        if len(set(names)) != n:
            dup = next(s for s in names if names.count(s) > 1)
            raise ProfileError(f"`block_names` has the duplicate {dup!r}; expected unique names")
        kinds = tuple(self.block_kinds)
        if len(kinds) != n:
            raise ProfileError(f"`block_kinds` has {len(kinds)} entries; expected {n} (one per block)")
        for k in kinds:
            one_of("block_kinds", k, OP_KINDS, error=ProfileError)
        set_(self, "block_names", names)
        set_(self, "block_kinds", kinds)
        for f in ("fwd_flops", "bwd_flops", "out_bytes"):
            set_(self, f, _vec(f, getattr(self, f), n))
        set_(self, "num_params", _vec("num_params", self.num_params, n, dtype=np.int64))
        for f in ("buffer_bytes", "mem_bytes", "num_ops", "saved_bytes"):
            v = getattr(self, f)
            set_(self, f, _vec(f, np.zeros(n) if v is None else v, n))
        e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2) if np.size(self.edges) else np.zeros((0, 2), int)
        e = as_array("edges", e, shape=(None, 2), dtype=np.int64, error=ProfileError)
        if e.size:
            if (e < 0).any() or (e >= n).any():
                raise ProfileError(f"`edges` has an index outside [0, {n - 1}]; expected block indices")
            bad = e[:, 0] >= e[:, 1]
            if bad.any():
                u, w = e[bad][0]
                raise ProfileError(f"`edges` has ({u}, {w}); expected u < w (blocks listed in a topological order)")
            if len(np.unique(e, axis=0)) != len(e):
                raise ProfileError("`edges` has a repeated edge; expected each (u, w) once")
        set_(self, "edges", e)
        set_(self, "edge_bytes", _vec("edge_bytes", self.edge_bytes, e.shape[0]))
        as_scalar("input_bytes", self.input_bytes, min_value=0.0, error=ProfileError)
        ic = np.unique(as_array("input_consumers", np.asarray(self.input_consumers, dtype=np.int64).reshape(-1),
                                shape=(None,), dtype=np.int64, min_value=0, max_value=n - 1, error=ProfileError))
        ic.setflags(write=False)
        set_(self, "input_consumers", ic)
        if self.kind_flops is None:   # all of a block's FLOPs are of its kind
            kf = {k: np.where(np.array(kinds) == k, self.fwd_flops, 0.0) for k in sorted(set(kinds))}
        else:
            kf = dict(self.kind_flops)
        checked = {}
        for k, v in kf.items():
            one_of("kind_flops key", k, OP_KINDS, error=ProfileError)
            checked[k] = _vec(f"kind_flops[{k!r}]", v, n)
        total = np.sum(list(checked.values()), axis=0) if checked else np.zeros(n)
        if not np.allclose(total, self.fwd_flops, rtol=1e-9, atol=1e-6):
            i = int(np.argmax(np.abs(total - self.fwd_flops)))
            raise ProfileError(f"`kind_flops` sums to {float(total[i])!r} at block {i}; expected fwd_flops = "
                               f"{float(self.fwd_flops[i])!r}")
        set_(self, "kind_flops", MappingProxyType(checked))
        one_of("param_dtype", self.param_dtype, tuple(DTYPE_BYTES), error=ProfileError)
        one_of("act_dtype", self.act_dtype, tuple(DTYPE_BYTES), error=ProfileError)
        ms = tuple(self.measurements)
        keys = set()
        for m in ms:
            if not isinstance(m, Measurement):
                raise ProfileError(f"`measurements` has {m!r}; expected Measurement objects")
            if m.block_time_s.shape != (n,):
                raise ProfileError(f"`measurements` entry {m.key} has {m.block_time_s.shape[0]} block times; "
                                   f"expected {n}")
            if m.key in keys:
                raise ProfileError(f"`measurements` has the key {m.key} twice; expected one per key")
            keys.add(m.key)
        set_(self, "measurements", ms)
        set_(self, "meta", MappingProxyType(dict(self.meta)))

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (arrays compared exactly, as in the JSON layout)."""
        return isinstance(other, ModelProfile) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- construction helpers ---------------------------------------------------------------------------
    @classmethod
    def chain(cls, name: str, fwd_flops: Any, out_bytes: Any, *, bwd_flops: Any = None, num_params: Any = None,
              input_bytes: float = 0.0, block_names: Sequence[str] | None = None,
              block_kinds: Sequence[str] | None = None, **kwargs: Any) -> ModelProfile:
        """A chain profile: block i feeds block i + 1 with ``out_bytes[i]`` bytes per sample.

        ``bwd_flops`` defaults to ``2 * fwd_flops`` (gradients w.r.t. inputs and weights), ``num_params`` to 0.
        """
        w = np.asarray(fwd_flops, dtype=float).reshape(-1)
        n = w.size
        a = np.asarray(out_bytes, dtype=float).reshape(-1)
        names = tuple(block_names) if block_names is not None else tuple(f"block{i}" for i in range(n))
        kinds = tuple(block_kinds) if block_kinds is not None else ("other",) * n
        edges = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
        return cls(name=name, block_names=names, block_kinds=kinds, fwd_flops=w,
                   bwd_flops=2 * w if bwd_flops is None else bwd_flops,
                   num_params=np.zeros(n, dtype=np.int64) if num_params is None else num_params,
                   out_bytes=a, edges=edges, edge_bytes=a[: n - 1],
                   input_bytes=input_bytes, input_consumers=np.zeros(1, dtype=np.int64), **kwargs)

    # -- basic queries ----------------------------------------------------------------------------------
    @property
    def n_blocks(self) -> int:
        return len(self.block_names)

    def __len__(self) -> int:
        return self.n_blocks

    def index(self, name: str) -> int:
        """Position of the block called ``name``."""
        try:
            return self.block_names.index(name)
        except ValueError:
            raise ProfileError(f"`name` = {name!r} is not a block of `{self.name}`") from None

    @property
    def is_chain(self) -> bool:
        """Whether the edges are exactly (i, i+1) and only block 0 reads the input."""
        n = self.n_blocks
        chain = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
        e = self.edges[np.lexsort((self.edges[:, 1], self.edges[:, 0]))]
        return bool(e.shape == chain.shape and (e == chain).all() and set(self.input_consumers.tolist()) <= {0})

    def param_bytes(self, dtype: str | None = None) -> np.ndarray:
        """(L,) parameter bytes per block in ``dtype`` (default: the profiled ``param_dtype``)."""
        d = one_of("dtype", dtype or self.param_dtype, tuple(DTYPE_BYTES), error=ProfileError)
        return self.num_params * DTYPE_BYTES[d]

    def activation_bytes(self, dtype: str | None = None) -> np.ndarray:
        """(L,) output activation bytes per sample re-expressed in ``dtype`` (e.g. 8-bit transmission)."""
        d = one_of("dtype", dtype or self.act_dtype, tuple(DTYPE_BYTES), error=ProfileError)
        return self.out_bytes * (DTYPE_BYTES[d] / DTYPE_BYTES[self.act_dtype])

    @staticmethod
    def prefix(values: Any) -> np.ndarray:
        """Prefix sums with a leading 0: entry k is the sum over the first k blocks (length L + 1)."""
        v = np.asarray(values, dtype=float)
        return np.concatenate([np.zeros((1, *v.shape[1:])), np.cumsum(v, axis=0)])

    def last_consumer(self) -> np.ndarray:
        """(L,) index of the last block reading each block's output (the block itself when nobody does)."""
        last = np.arange(self.n_blocks)
        if self.edges.size:
            np.maximum.at(last, self.edges[:, 0], self.edges[:, 1])
        return last

    # -- cuts -------------------------------------------------------------------------------------------
    def cut_bytes(self, device_set: Any) -> np.ndarray:
        """Bytes per sample crossing from ``device_set`` (bool mask (..., L)) to the other blocks; see above."""
        s = np.asarray(device_set, dtype=bool)
        if s.shape[-1:] != (self.n_blocks,):
            raise ProfileError(f"`device_set` has shape {s.shape}; expected a boolean mask (..., {self.n_blocks})")
        src, dst = self.edges[:, 0], self.edges[:, 1]
        crossing = s[..., src] & ~s[..., dst]                                       # (..., E)
        per_src = np.zeros((*s.shape[:-1], self.n_blocks))
        if src.size:
            inc = np.zeros((src.size, self.n_blocks))
            inc[np.arange(src.size), src] = 1.0
            per_src = (crossing * self.edge_bytes) @ inc
        total = np.minimum(per_src, self.out_bytes).sum(axis=-1)
        if self.input_consumers.size:
            needs_input = (~s[..., self.input_consumers]).any(axis=-1)
            total = total + self.input_bytes * needs_input
        return total

    def cut_bytes_after(self) -> np.ndarray:
        """(L + 1,) bytes crossing the prefix cut after k blocks, k = 0..L (k = 0: the input; k = L: 0)."""
        n = self.n_blocks
        masks = np.arange(n)[None, :] < np.arange(n + 1)[:, None]
        return self.cut_bytes(masks)

    def is_ancestor_closed(self, device_set: Any) -> np.ndarray:
        """Whether every predecessor of a block in the set is in the set (a valid "device prefix")."""
        s = np.asarray(device_set, dtype=bool)
        if not self.edges.size:
            return np.ones(s.shape[:-1], dtype=bool)
        return ~(s[..., self.edges[:, 1]] & ~s[..., self.edges[:, 0]]).any(axis=-1)

    def articulation_points(self) -> np.ndarray:
        """Blocks k < L - 1 whose prefix cut (blocks 0..k on one side) is crossed by k's output alone."""
        n = self.n_blocks
        last = self.last_consumer()
        open_count = np.zeros(n + 1)
        has_out = last > np.arange(n)
        np.add.at(open_count, np.arange(n)[has_out], 1.0)
        np.add.at(open_count, last[has_out], -1.0)
        crossing = np.cumsum(open_count)[:n]            # sources u <= k with last[u] > k
        input_done = np.arange(n) >= (self.input_consumers.max() if self.input_consumers.size else 0)
        art = (crossing == 1) & has_out & input_done
        return np.flatnonzero(art[: n - 1])

    def segments(self) -> list[tuple[int, int]]:
        """Half-open block ranges [start, stop) between consecutive articulation points."""
        cuts = [0, *(self.articulation_points() + 1).tolist(), self.n_blocks]
        return list(itertools.pairwise(cuts))

    # -- coarsening -------------------------------------------------------------------------------------
    def coarsen(self, boundaries: Sequence[int], *, names: Sequence[str] | None = None) -> ModelProfile:
        """Merge consecutive block ranges ``[b_i, b_{i+1})`` (``boundaries`` from 0 to L) into single blocks.

        FLOPs, parameters, buffers, memory traffic and measured block times add up; a merged block's output
        bytes are those of its members' outputs that leave the range (or are model outputs); edges between
        ranges add their bytes. The result is again a DAG in topological order.
        """
        n = self.n_blocks
        b = np.asarray(boundaries, dtype=np.int64)
        if b.ndim != 1 or b.size < 2 or b[0] != 0 or b[-1] != n or (np.diff(b) <= 0).any():
            raise ProfileError(f"`boundaries` = {list(map(int, b))}; expected strictly increasing from 0 to {n}")
        group = np.repeat(np.arange(b.size - 1), np.diff(b))
        g = b.size - 1

        def add(v: np.ndarray) -> np.ndarray:
            return np.bincount(group, weights=v, minlength=g)

        src, dst = self.edges[:, 0], self.edges[:, 1]
        leaving = group[src] != group[dst]
        out_by_src = np.zeros(n)
        np.add.at(out_by_src, src[leaving], self.edge_bytes[leaving])
        is_output = self.last_consumer() == np.arange(n)
        member_out = np.where(is_output, self.out_bytes, np.minimum(out_by_src, self.out_bytes))
        if leaving.any():
            # distinct tensors: a source feeding several blocks of one range sends its output once
            pairs, inv = np.unique(np.stack([src[leaving], group[dst][leaving]], axis=1), axis=0,
                                   return_inverse=True)
            pair_bytes = np.bincount(inv.ravel(), weights=self.edge_bytes[leaving], minlength=len(pairs))
            pair_bytes = np.minimum(pair_bytes, self.out_bytes[pairs[:, 0]])
            uniq, inv2 = np.unique(np.stack([group[pairs[:, 0]], pairs[:, 1]], axis=1), axis=0,
                                   return_inverse=True)
            ebytes = np.bincount(inv2.ravel(), weights=pair_bytes, minlength=len(uniq))
        else:
            uniq, ebytes = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
        if names is None:
            names = [self.block_names[s] if e - s == 1 else f"{self.block_names[s]}..{self.block_names[e - 1]}"
                     for s, e in itertools.pairwise(b)]
        kinds = []
        for s, e in itertools.pairwise(b):
            sub = {k: v[s:e].sum() for k, v in self.kind_flops.items()}
            best = max(sub, key=lambda k: sub[k]) if sub and max(sub.values()) > 0 else None
            kinds.append(best or max(set(self.block_kinds[s:e]), key=self.block_kinds[s:e].count))
        ms = tuple(replace(m, block_time_s=add(m.block_time_s),
                           block_time_iqr_s=None if m.block_time_iqr_s is None else add(m.block_time_iqr_s),
                           h2d_time_s=None if m.h2d_time_s is None else add(m.h2d_time_s),
                           replicated_time_s=None if m.replicated_time_s is None else add(m.replicated_time_s))
                   for m in self.measurements)
        return ModelProfile(
            name=self.name, block_names=tuple(names), block_kinds=tuple(kinds), fwd_flops=add(self.fwd_flops),
            bwd_flops=add(self.bwd_flops), num_params=add(self.num_params.astype(float)).astype(np.int64),
            out_bytes=add(member_out), edges=uniq, edge_bytes=ebytes, input_bytes=self.input_bytes,
            input_consumers=np.unique(group[self.input_consumers]), buffer_bytes=add(self.buffer_bytes),
            mem_bytes=add(self.mem_bytes), num_ops=add(self.num_ops), saved_bytes=add(self.saved_bytes),
            kind_flops={k: add(v) for k, v in self.kind_flops.items()},
            param_dtype=self.param_dtype, act_dtype=self.act_dtype, measurements=ms,
            meta={**self.meta, "coarsened_from": n})

    def to_chain(self) -> ModelProfile:
        """The chain of segments between articulation points (:meth:`segments`), via :meth:`coarsen`.

        A profile that is already a chain is returned unchanged.
        """
        if self.is_chain:
            return self
        return self.coarsen([0] + [e for _, e in self.segments()])

    # -- measurements -----------------------------------------------------------------------------------
    def latency(self, device: str, batch_size: int, dtype: str | None = None) -> Measurement:
        """The measurement for (device, batch size, dtype); raises listing the keys that exist."""
        key = (device, int(batch_size), dtype or self.act_dtype)
        for m in self.measurements:
            if m.key == key:
                return m
        raise ProfileError(f"`{self.name}` has no measurement for {key}; expected one of "
                           f"{[m.key for m in self.measurements] or 'none (profile with timing first)'}")

    def with_measurement(self, measurement: Measurement) -> ModelProfile:
        """A copy with ``measurement`` added (replacing one with the same key)."""
        keep = tuple(m for m in self.measurements if m.key != measurement.key)
        return replace(self, measurements=(*keep, measurement))

    # -- (de)serialization ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
            "param_dtype": self.param_dtype, "act_dtype": self.act_dtype,
            "input_bytes": float(self.input_bytes), "input_consumers": self.input_consumers.tolist(),
            "blocks": [
                {"name": self.block_names[i], "kind": self.block_kinds[i], "fwd_flops": float(self.fwd_flops[i]),
                 "bwd_flops": float(self.bwd_flops[i]), "num_params": int(self.num_params[i]),
                 "out_bytes": float(self.out_bytes[i]), "buffer_bytes": float(self.buffer_bytes[i]),
                 "mem_bytes": float(self.mem_bytes[i]), "num_ops": float(self.num_ops[i]),
                 "saved_bytes": float(self.saved_bytes[i]),
                 "kind_flops": {k: float(v[i]) for k, v in self.kind_flops.items() if v[i]}}
                for i in range(self.n_blocks)],
            "edges": [[int(u), int(w), float(x)] for (u, w), x in zip(self.edges, self.edge_bytes, strict=True)],
            "measurements": [m.to_dict() for m in self.measurements],
            "meta": dict(self.meta),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text; :meth:`from_json` reads it back exactly (floats are written with full precision)."""
        try:
            return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"`meta` of `{self.name}` is not JSON-serializable: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (UTF-8) and return the path."""
        p = Path(path)
        p.write_text(self.to_json(indent=1), encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "<dict>") -> ModelProfile:
        """Read the :meth:`to_dict` layout; malformed data raises :class:`ProfileError` naming ``source``."""
        if d.get("format") != FORMAT:
            raise ProfileError(f"profile file `{source}`: key `format` = {d.get('format')!r}; expected {FORMAT!r}")
        if d.get("version") != FORMAT_VERSION:
            raise ProfileError(f"profile file `{source}`: key `version` = {d.get('version')!r}; expected "
                               f"{FORMAT_VERSION}")
        try:
            blocks = d["blocks"]
            kinds = sorted({k for b in blocks for k in b.get("kind_flops", {})})
            edges = d.get("edges", [])
            return cls(
                name=d["name"], block_names=tuple(b["name"] for b in blocks),
                block_kinds=tuple(b["kind"] for b in blocks),
                fwd_flops=[b["fwd_flops"] for b in blocks], bwd_flops=[b["bwd_flops"] for b in blocks],
                num_params=[b["num_params"] for b in blocks], out_bytes=[b["out_bytes"] for b in blocks],
                buffer_bytes=[b.get("buffer_bytes", 0.0) for b in blocks],
                mem_bytes=[b.get("mem_bytes", 0.0) for b in blocks],
                num_ops=[b.get("num_ops", 0.0) for b in blocks],
                saved_bytes=[b.get("saved_bytes", 0.0) for b in blocks],
                kind_flops={k: [b.get("kind_flops", {}).get(k, 0.0) for b in blocks] for k in kinds},
                edges=[[e[0], e[1]] for e in edges], edge_bytes=[e[2] for e in edges],
                input_bytes=d.get("input_bytes", 0.0), input_consumers=d.get("input_consumers", [0]),
                param_dtype=d.get("param_dtype", "fp32"), act_dtype=d.get("act_dtype", "fp32"),
                measurements=tuple(Measurement.from_dict(m) for m in d.get("measurements", [])),
                meta=d.get("meta", {}),
            )
        except KeyError as exc:
            raise ProfileError(f"profile file `{source}`: key `{exc.args[0]}` is missing; expected it in the "
                               f"{FORMAT} layout") from exc
        except ProfileError as exc:
            raise ProfileError(f"profile file `{source}`: {exc}") from exc
        except (TypeError, ValueError, IndexError) as exc:
            raise ProfileError(f"profile file `{source}`: malformed {FORMAT} data ({exc})") from exc

    @classmethod
    def from_json(cls, text: str, *, source: str = "<json>") -> ModelProfile:
        d = parse_json(text, f"profile file `{source}`", ProfileError)
        if not isinstance(d, dict):
            raise ProfileError(f"profile file `{source}` holds a {type(d).__name__}; expected a JSON object")
        return cls.from_dict(d, source=source)

    @classmethod
    def load(cls, path: str | Path) -> ModelProfile:
        p = Path(path)
        return cls.from_json(read_text(p, "profile file", ProfileError), source=str(p))

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` with block attributes and edge ``bytes`` (networkx imported lazily)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for i, nm in enumerate(self.block_names):
            g.add_node(i, name=nm, kind=self.block_kinds[i], fwd_flops=float(self.fwd_flops[i]),
                       out_bytes=float(self.out_bytes[i]), num_params=int(self.num_params[i]))
        for (u, w), x in zip(self.edges.tolist(), self.edge_bytes.tolist(), strict=True):
            g.add_edge(u, w, bytes=x)
        return g

    def summary(self, *, max_rows: int = 40) -> str:
        """A plain-text table of the blocks (FLOPs in MFLOP, bytes in KiB, per sample)."""
        lines = [f"{self.name}: {self.n_blocks} blocks, {self.fwd_flops.sum() / 1e9:.3f} GFLOP fwd/sample, "
                 f"{int(self.num_params.sum()):,} params, chain={self.is_chain}",
                 f"{'#':>4} {'block':<44} {'kind':<11} {'fwd MFLOP':>10} {'params':>11} {'out KiB':>9}"]
        rows = range(self.n_blocks)
        for i in rows[:max_rows]:
            lines.append(f"{i:>4} {self.block_names[i][:44]:<44} {self.block_kinds[i]:<11} "
                         f"{self.fwd_flops[i] / 1e6:>10.2f} {int(self.num_params[i]):>11,} "
                         f"{self.out_bytes[i] / 1024:>9.1f}")
        if self.n_blocks > max_rows:
            lines.append(f"     ... {self.n_blocks - max_rows} more")
        return "\n".join(lines)


__all__ = ["FORMAT", "FORMAT_VERSION", "OP_KINDS", "Measurement", "ModelProfile"]
