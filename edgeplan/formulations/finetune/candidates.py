r"""Candidate tables of a fine-tuning round: FedQuad's (depth, quantized layers, bits) and FedBE's block subsets.

Both builders take per-layer costs (:class:`LayerCosts`: from a real model by
:func:`edgeplan.validation.finetune.measure.measure_layer_costs`, or from the transformer formulas of
:func:`transformer_layer_costs`) and devices (compute rate, memory cap, uplink), and return a
:class:`~edgeplan.formulations.finetune.round.FineTuneRound`.

FedQuad [reconstruction; ``docs/models/finetune.md``]
----------------------------------------------------

A configuration :math:`(d, q, b)` puts LoRA on the top :math:`d` layers :math:`L-d..L-1`, and stores the saved
activations of the lowest :math:`q` of them in :math:`b`-bit integers with one fp32 scale per ``group``
elements. With per-layer forward and backward work :math:`f_l, g_l`, saved activations :math:`a_l` bytes of
which :math:`e_l` elements are quantizable, quantization work :math:`h_l`, LoRA parameters :math:`p_l`:

.. math::

    t(d,q,b) &= \Big(\textstyle\sum_{l} f_l + f_{head} + g_{head} + \sum_{l \ge L-d} g_l
        + \sum_{l \in Q} h_l\Big) / F_i \\
    m(d,q,b) &= M_W + M_{ws} + \textstyle\sum_{l \ge L-d} (\sigma p_l + a_l)
        - \sum_{l \in Q} e_l \big(\epsilon - b/8 - 4/\text{group}\big) \\
    U(d) &= \textstyle\sum_{l \ge L-d} \upsilon p_l, \qquad
    u(d,q,b) = \max\big(0, (d/L)^\gamma - \rho_b\, q / L\big)

(:math:`F_i` the device's FLOP/s, :math:`\sigma` bytes of LoRA state per parameter: weight, gradient and two
Adam moments in fp32 = 16; :math:`\epsilon` bytes per activation element; :math:`\upsilon` bytes per uploaded
parameter; :math:`\gamma` and the per-bit penalties :math:`\rho_b` are our assumptions).

FedBE [reconstruction]
----------------------
:math:`J` blocks are appended LLaMA-Pro style (a copy after every :math:`L/J`-th block, output projections
zero-initialised). A device trains a subset :math:`S` of them: every block above the lowest trained one runs
its backward pass (input gradients), every trained block also its weight gradients; saved activations are
kept from the lowest trained block up. Utility :math:`\sum_{j \in S} \alpha_{ij}` with affinity
:math:`\alpha_{ij} = 1 + \kappa\,\text{skew}_i\,(1 - z_j)` (:math:`z_j \in [0, 1]` the block's relative
depth: skewed clients prefer shallow blocks) [assumption].
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.round import FineTuneRound

#: Utility penalty per quantized layer (times 1/L) by bit width [assumption].
QUANT_PENALTY = {8: 0.01, 4: 0.05, 2: 0.2}
#: Bytes of LoRA state per trainable parameter: fp32 weight, gradient and two Adam moments.
STATE_BYTES_PER_PARAM = 16.0
FEDQUAD_FIELDS = ("lora_depth", "quantized_layers", "bits")
#: LoRA targets of the zoo transformers: (target modules, name of the blocks' ModuleList, fan_in_fan_out).
LORA_TARGETS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "gpt2": (("c_attn",), "h", True),
    "bert_base": (("query", "value"), "layer", False),
    "llama_small": (("q_proj", "v_proj"), "layers", False),
}


def fedquad_configs(n_layers: int, bits: tuple[int, ...] = (8, 4)) -> np.ndarray:
    """``(K, 3)`` FedQuad configurations (depth, quantized layers, bits) in table order: every depth without
    quantization (bits 0), then for each width every depth with 1..depth quantized layers."""
    rows = [(d, 0, 0) for d in range(1, n_layers + 1)]
    rows += [(d, q, b) for b in bits for d in range(1, n_layers + 1) for q in range(1, d + 1)]
    return np.array(rows, dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerCosts:
    """Per-layer costs of one training step of a transformer (per local step, at the profiled batch).

    Parameters
    ----------
    forward_flops, backward_flops
        ``(L,)`` work of layer :math:`l`'s forward, and of its backward when it is trainable (FLOPs, or
        seconds on a reference device when the rate is 1).
    head_forward_flops, head_backward_flops
        Work outside the layers (embedding, final norm, head, loss), forward and backward.
    activation_bytes
        ``(L,)`` bytes a trainable layer saves for backward at full precision.
    quantizable_elements
        ``(L,)`` elements of those that activation quantization compresses.
    quant_flops
        ``(L,)`` work of quantizing and dequantizing one layer's activations.
    lora_params
        ``(L,)`` LoRA parameters of a layer.
    frozen_bytes, workspace_bytes
        Memory of the frozen weights and of everything else a step holds (outputs, buffers).
    element_bytes
        Bytes per activation element at full precision (4: fp32).
    upload_bytes_per_param
        Bytes per LoRA parameter uploaded (2: fp16).
    group
        Elements per quantization scale.
    layer_params
        ``(L,)`` frozen parameters of each layer (what an appended FedBE block trains); default: the frozen
        weights spread evenly over the layers.
    bottom_activation_bytes, bottom_quantizable_elements
        ``(L,)`` the same as ``activation_bytes`` and ``quantizable_elements`` for a layer that is the lowest
        trainable one: its input needs no gradient, so it saves less (default: no difference).
    quantized_bytes, bottom_quantized_bytes
        ``{bits: (L,)}``: measured bytes a (lowest) trainable layer keeps with its activations in ``bits`` bits;
        they replace the element formula for those widths (a real model saves several views of one tensor,
        each quantized on its own).
    quant_flops_by_bits
        ``{bits: (L,)}``: ``quant_flops`` per width where it differs (measured overheads).
    bottom_quant_flops, bottom_quant_flops_by_bits
        The same for the lowest trainable layer, which is the first quantized one whenever any is (measured:
        it carries the fixed cost of quantizing at all); default: no difference.
    """

    forward_flops: Any
    backward_flops: Any
    head_forward_flops: float = 0.0
    head_backward_flops: float = 0.0
    activation_bytes: Any
    quantizable_elements: Any
    quant_flops: Any
    lora_params: Any
    frozen_bytes: float = 0.0
    workspace_bytes: float = 0.0
    element_bytes: float = 4.0
    upload_bytes_per_param: float = 2.0
    group: int = 64
    layer_params: Any = None
    bottom_activation_bytes: Any = None
    bottom_quantizable_elements: Any = None
    quantized_bytes: Any = None
    bottom_quantized_bytes: Any = None
    quant_flops_by_bits: Any = None
    bottom_quant_flops: Any = None
    bottom_quant_flops_by_bits: Any = None

    def __post_init__(self) -> None:
        f = as_array("forward_flops", self.forward_flops, shape=(None,), min_value=0.0)
        if f.size < 1:
            raise ProblemDataError("`forward_flops` is empty; expected one entry per layer")
        for key in ("backward_flops", "activation_bytes", "quantizable_elements", "quant_flops", "lora_params"):
            object.__setattr__(self, key, as_array(key, getattr(self, key), shape=(f.size,), min_value=0.0))
        object.__setattr__(self, "forward_flops", f)
        for key in ("head_forward_flops", "head_backward_flops", "frozen_bytes", "workspace_bytes"):
            object.__setattr__(self, key, as_scalar(key, getattr(self, key), min_value=0.0))
        for key in ("element_bytes", "upload_bytes_per_param"):
            object.__setattr__(self, key, as_scalar(key, getattr(self, key), min_value=0.0, strict_min=True))
        if isinstance(self.group, bool) or not isinstance(self.group, int | np.integer) or self.group < 1:
            raise ProblemDataError(f"`group` = {self.group!r}; expected a positive integer")
        lp = self.layer_params
        if lp is None:
            lp = np.full(f.size, self.frozen_bytes / self.element_bytes / f.size)
        object.__setattr__(self, "layer_params", as_array("layer_params", lp, shape=(f.size,), min_value=0.0))
        for key, full in (("bottom_activation_bytes", self.activation_bytes),
                          ("bottom_quantizable_elements", self.quantizable_elements),
                          ("bottom_quant_flops", self.quant_flops)):
            value = full if getattr(self, key) is None else getattr(self, key)
            object.__setattr__(self, key, as_array(key, value, shape=(f.size,), min_value=0.0))
        for key in ("quantized_bytes", "bottom_quantized_bytes", "quant_flops_by_bits", "bottom_quant_flops_by_bits"):
            raw = getattr(self, key) or {}
            if not isinstance(raw, dict) or not all(isinstance(b, int) and b in (2, 4, 8) for b in raw):
                raise ProblemDataError(f"`{key}` = {raw!r}; expected {{bits: per-layer bytes}} with bits 2, 4 or 8")
            object.__setattr__(self, key, {b: as_array(f"{key}[{b}]", v, shape=(f.size,), min_value=0.0)
                                           for b, v in raw.items()})
        if set(self.quantized_bytes) != set(self.bottom_quantized_bytes):
            raise ProblemDataError("`quantized_bytes` and `bottom_quantized_bytes` have different bit widths; "
                                   "expected the same keys")

    @property
    def n_layers(self) -> int:
        return int(self.forward_flops.size)

    def fedquad_table(self, bits: tuple[int, ...] = (8, 4), *, gamma: float = 0.5,
                      penalty: dict[int, float] | None = None) -> dict[str, np.ndarray]:
        """Every FedQuad configuration's work, memory, upload and utility (device independent).

        Returns arrays over the K configurations: ``config`` ``(K, 3)`` (depth, quantized layers, bits;
        bits 0 when nothing is quantized), ``flops``, ``memory_bytes``, ``upload_bytes``, ``utility``.
        """
        L = self.n_layers
        pen = {**QUANT_PENALTY, **(penalty or {})}
        for b in bits:
            if b not in pen or not 1 <= b <= 16:
                raise ProblemDataError(f"`bits` = {bits!r}; expected widths among {sorted(pen)}")
        cfg = fedquad_configs(L, bits)
        d, q, b = cfg.T
        top = L - d  # lowest trainable layer
        rev = lambda v: np.concatenate([[0.0], np.cumsum(v[::-1])])  # noqa: E731  sum of the top k layers
        bwd_top, lora_top, act_top = rev(self.backward_flops), rev(self.lora_params), rev(self.activation_bytes)
        pre = lambda v: np.concatenate([[0.0], np.cumsum(v)])  # noqa: E731  sum of the first k layers
        def quant_work(per_layer: np.ndarray, bottom: np.ndarray, rows: Any = slice(None)) -> np.ndarray:
            tp, qq = top[rows], q[rows]
            acc = pre(per_layer)
            return np.where(qq > 0, acc[tp + qq] - acc[tp + 1] + bottom[tp], 0.0)

        q_flops = quant_work(self.quant_flops, self.bottom_quant_flops)
        for bb, qf in self.quant_flops_by_bits.items():
            sel = b == bb
            q_flops[sel] = quant_work(qf, self.bottom_quant_flops_by_bits.get(bb, qf), sel)
        # the lowest trainable layer saves its bottom amounts; quantization starts from it
        e_int, e_bot = self.quantizable_elements, self.bottom_quantizable_elements
        qe_pre, qg_pre = pre(e_int), pre(np.ceil(e_int / self.group))
        q_elems = np.where(q > 0, qe_pre[top + q] - qe_pre[top + 1] + e_bot[top], 0.0)
        q_groups = np.where(q > 0, qg_pre[top + q] - qg_pre[top + 1] + np.ceil(e_bot[top] / self.group), 0.0)
        saved = self.element_bytes * q_elems - (np.ceil(q_elems * b / 8.0) + 4.0 * q_groups)
        for bb, qb in self.quantized_bytes.items():  # measured widths: full minus measured quantized bytes
            sel = (b == bb) & (q > 0)
            kept_pre = pre(self.activation_bytes - qb)
            bottom = self.bottom_activation_bytes - self.bottom_quantized_bytes[bb]
            saved[sel] = (kept_pre[top[sel] + q[sel]] - kept_pre[top[sel] + 1] + bottom[top[sel]])
        act = act_top[d] - self.activation_bytes[top] + self.bottom_activation_bytes[top]
        flops = (self.forward_flops.sum() + self.head_forward_flops + self.head_backward_flops + bwd_top[d] + q_flops)
        memory = (self.frozen_bytes + self.workspace_bytes + STATE_BYTES_PER_PARAM * lora_top[d] + act
                  - np.where(q > 0, saved, 0.0))
        upload = self.upload_bytes_per_param * lora_top[d]
        rho = np.array([pen.get(int(v), 0.0) for v in b])
        utility = np.maximum(0.0, (d / L) ** gamma - rho * q / L)
        return {"config": cfg, "flops": flops, "memory_bytes": memory, "upload_bytes": upload, "utility": utility}


def transformer_layer_costs(n_layers: int = 12, hidden: int = 768, seq_len: int = 256, batch: int = 8,
                            heads: int = 12, lora_rank: int = 8, vocab: int = 32000, *,
                            element_bytes: float = 4.0) -> LayerCosts:
    """Per-layer costs of a decoder from the standard formulas (no model is built).

    Forward FLOPs per layer :math:`24bsh^2 + 4bs^2h`; a LoRA-trainable layer's backward with frozen base weights
    computes input gradients (the forward's work again) plus LoRA's; saved activations
    :math:`(34bsh + 5ab s^2)/2` elements (Korthikanti et al., 2022, counted in elements); LoRA of rank ``r`` on
    the query and value projections, :math:`4hr` parameters; quantization about 4 operations per element.

    Parameters
    ----------
    n_layers, hidden, seq_len, batch, heads
        :math:`L`, :math:`h`, :math:`s`, :math:`b`, :math:`a`.
    lora_rank
        :math:`r`.
    vocab
        Vocabulary size (the head's work and the logits kept for the loss).
    element_bytes
        Bytes per activation and weight element.
    """
    b, s, h, a = batch, seq_len, hidden, heads
    fwd = 24.0 * b * s * h * h + 4.0 * b * s * s * h
    lora = 4.0 * h * lora_rank
    elems = (34.0 * b * s * h + 5.0 * a * b * s * s) / 2.0
    L = n_layers
    return LayerCosts(forward_flops=np.full(L, fwd), backward_flops=np.full(L, fwd + 6.0 * b * s * lora),
                      head_forward_flops=2.0 * b * s * h * vocab, head_backward_flops=2.0 * b * s * h * vocab,
                      activation_bytes=np.full(L, elems * element_bytes),
                      quantizable_elements=np.full(L, 0.9 * elems), quant_flops=np.full(L, 4.0 * 0.9 * elems),
                      lora_params=np.full(L, lora), frozen_bytes=element_bytes * (12.0 * h * h * L + vocab * h),
                      layer_params=np.full(L, 12.0 * h * h),
                      workspace_bytes=element_bytes * 2.0 * b * s * vocab, element_bytes=element_bytes)


def _devices(n: int, rate: Any, memory: Any, uplink: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    as_vec = lambda name, v, **kw: as_array(name, np.full(n, v) if np.ndim(v) == 0 else v,  # noqa: E731
                                            shape=(n,), **kw)
    return (as_vec("flops_per_s", rate, min_value=0.0, strict_min=True),
            as_vec("memory_cap_bytes", memory, allow_inf=True, min_value=0.0),
            as_vec("uplink_bps", uplink, allow_inf=True, min_value=0.0, strict_min=True))


def fedquad_round(costs: LayerCosts, flops_per_s: Any, memory_cap_bytes: Any, uplink_bps: Any, *,
                  n_devices: int | None = None, bits: tuple[int, ...] = (8, 4), local_steps: Any = 1.0,
                  weights: Any = None, gamma: float = 0.5, **round_kw: Any) -> FineTuneRound:
    """The FedQuad round of N devices over ``costs`` (see the module docstring).

    Parameters
    ----------
    costs
        The model's per-layer costs (FLOPs, or host seconds with rates relative to the host).
    flops_per_s, memory_cap_bytes, uplink_bps
        Per device (or scalar): compute rate in the unit of ``costs``, memory cap (bytes), uplink (bytes/s).
    n_devices
        N when every device argument is a scalar.
    bits
        Activation bit widths to offer.
    local_steps, weights
        :math:`\\tau_i` and :math:`w_i` of :class:`FineTuneRound`.
    gamma
        :math:`\\gamma` of the utility.
    round_kw
        Other :class:`FineTuneRound` fields (``goal``, ``server_time_s``, ...).
    """
    n = n_devices if n_devices is not None else int(np.size(flops_per_s))
    rate, mem, up = _devices(n, flops_per_s, memory_cap_bytes, uplink_bps)
    tab = costs.fedquad_table(bits, gamma=gamma)
    k = tab["config"].shape[0]
    return FineTuneRound(step_time_s=tab["flops"][None, :] / rate[:, None],
                         memory_bytes=np.broadcast_to(tab["memory_bytes"], (n, k)),
                         upload_bytes=np.broadcast_to(tab["upload_bytes"], (n, k)),
                         utility=np.broadcast_to(tab["utility"], (n, k)), memory_cap_bytes=mem, uplink_bps=up,
                         local_steps=local_steps, weights=weights,
                         config=np.broadcast_to(tab["config"], (n, k, 3)), config_fields=FEDQUAD_FIELDS,
                         **round_kw)


def fedbe_round(costs: LayerCosts, n_blocks: int, flops_per_s: Any, memory_cap_bytes: Any, uplink_bps: Any, *,
                skew: Any, max_blocks: int | None = None, affinity_slope: float = 1.0, min_coverage: Any = 1,
                local_steps: Any = 1.0, weights: Any = None, **round_kw: Any) -> FineTuneRound:
    """FedBE's round: ``n_blocks`` appended blocks (copies of a layer of ``costs``, fully trained, with Adam);
    each device picks a subset of at most ``max_blocks`` of them (empty included).

    Parameters
    ----------
    costs
        The base model's per-layer costs; an appended block costs like an average layer and trains all its
        weights (``layer_params``) with Adam.
    n_blocks
        :math:`J`, appended blocks (subsets are enumerated: at most 12).
    flops_per_s, memory_cap_bytes, uplink_bps
        Per device: compute rate, memory cap (bytes), uplink (bytes/s).
    skew
        ``(N,)`` label skew in [0, 1] (:func:`edgeplan.profiles.data.label_skew`).
    max_blocks
        The most blocks one device trains (``None``: all).
    affinity_slope
        :math:`\\kappa` of the affinity.
    min_coverage
        :math:`m_j`: devices that must train block :math:`j`.
    local_steps, weights
        :math:`\\tau_i` and :math:`w_i`.
    round_kw
        Other :class:`FineTuneRound` fields.
    """
    L, J = costs.n_layers, n_blocks
    if isinstance(J, bool) or not isinstance(J, int | np.integer) or not 1 <= J <= 12:
        raise ProblemDataError(f"`n_blocks` = {n_blocks!r}; expected an integer in 1..12 (subsets are enumerated)")
    n = int(np.size(skew))
    rate, mem, up = _devices(n, flops_per_s, memory_cap_bytes, uplink_bps)
    sk = as_array("skew", skew, shape=(n,), min_value=0.0, max_value=1.0)
    cap = J if max_blocks is None else int(max_blocks)
    # the expanded stack: original layers with block j appended after original layer pos[j]
    pos = np.array([(j + 1) * L // J - 1 for j in range(J)])
    order = []  # (is_expanded, index) bottom to top
    for l_ in range(L):
        order.append((False, l_))
        order += [(True, j) for j in np.flatnonzero(pos == l_)]
    depth_of = {j: k for k, (e, j) in enumerate(order) if e}
    mean = lambda v: float(np.mean(v))  # noqa: E731  an appended block costs like an average layer
    f_blk, g_in, act = mean(costs.forward_flops), mean(costs.backward_flops), mean(costs.activation_bytes)
    blk_params = mean(costs.layer_params)
    fwd_all = costs.forward_flops.sum() + J * f_blk + costs.head_forward_flops + costs.head_backward_flops
    subsets = [s for m in range(cap + 1) for s in itertools.combinations(range(J), m)]
    K = len(subsets)
    flops, memory, upload, cover = np.zeros(K), np.zeros(K), np.zeros(K), np.zeros((K, J), dtype=bool)
    z = np.array([depth_of[j] / max(len(order) - 1, 1) for j in range(J)])
    for c, s in enumerate(subsets):
        if not s:
            flops[c] = fwd_all - costs.head_backward_flops
            memory[c] = costs.frozen_bytes + J * blk_params * costs.element_bytes + costs.workspace_bytes
            continue
        low = min(depth_of[j] for j in s)
        above = order[low:]
        n_above = len(above)
        flops[c] = fwd_all + n_above * g_in + len(s) * f_blk  # input grads above, weight grads of the trained
        memory[c] = (costs.frozen_bytes + J * blk_params * costs.element_bytes + costs.workspace_bytes
                     + n_above * act + STATE_BYTES_PER_PARAM * blk_params * len(s))
        upload[c] = costs.upload_bytes_per_param * blk_params * len(s)
        cover[c, list(s)] = True
    alpha = 1.0 + affinity_slope * sk[:, None] * (1.0 - z[None, :])  # (n, J)
    utility = alpha @ cover.T.astype(float)
    cfg = np.array([[sum(1 << j for j in s), len(s)] for s in subsets], dtype=np.int64)
    return FineTuneRound(step_time_s=flops[None, :] / rate[:, None],
                         memory_bytes=np.broadcast_to(memory, (n, K)), upload_bytes=np.broadcast_to(upload, (n, K)),
                         utility=utility, memory_cap_bytes=mem, uplink_bps=up, local_steps=local_steps,
                         weights=weights, coverage=np.broadcast_to(cover, (n, K, J)), min_coverage=min_coverage,
                         config=np.broadcast_to(cfg, (n, K, 2)), config_fields=("block_mask", "n_blocks"), **round_kw)


__all__ = ["FEDQUAD_FIELDS", "LORA_TARGETS", "QUANT_PENALTY", "STATE_BYTES_PER_PARAM", "LayerCosts", "fedbe_round",
           "fedquad_configs", "fedquad_round", "transformer_layer_costs"]
