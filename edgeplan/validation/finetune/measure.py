r"""FedQuad configurations measured on real models: LoRA from ``peft``, activations quantized for real.

A configuration :math:`(d, q, b)` of a zoo transformer (:func:`edgeplan.validation.zoo.build_model`: GPT-2, BERT,
the Llama-style decoder) is built as ``peft``'s ``LoraConfig(target_modules=..., layers_to_transform=[top d
blocks])`` on a freshly seeded model, and one training step (forward with the loss, backward, Adam step on the
LoRA parameters) runs with every saved tensor counted and the lowest :math:`q` trainable blocks' saved tensors
stored in :math:`b` bits (:class:`~edgeplan.validation.finetune.quant.SavedTensors`). Measured:

* saved-activation bytes (exact, from ``saved_tensors_hooks``), per block;
* LoRA parameter, gradient and Adam-state bytes (from the tensors);
* the step's wall time (median over repetitions).

:func:`fit_costs` turns measured calibration configurations (at least the :func:`anchors`) into
:class:`~edgeplan.formulations.finetune.candidates.LayerCosts` in host seconds; :func:`compare` measures every
configuration and predicts each from a fit that did not see it (anchors plus half of the others, two folds).

Step times on CPU move with the allocator: glibc returns large freed blocks to the kernel, so the next step
page-faults them back (10-15 % of a small model's step, and unevenly), and a heap that has already held other
models is slower again. :func:`measure_many` therefore times its steps in a fresh interpreter inside
:func:`~edgeplan.profiles.memory.steady_allocator`, which keeps freed memory in the process as a runtime's
caching allocator does (:func:`~edgeplan.profiles.memory.in_fresh_process`).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.candidates import (
    LORA_TARGETS,
    STATE_BYTES_PER_PARAM,
    LayerCosts,
    fedquad_configs,
)
from edgeplan.profiles.memory import MemoryProbe, in_fresh_process
from edgeplan.validation.finetune.quant import SavedTensors
from edgeplan.validation.zoo import build_model


@dataclass
class LoRAModel:
    """A zoo model with ``peft`` LoRA on its top ``depth`` blocks, its inputs and labels."""

    name: str
    module: Any
    blocks: list[torch.nn.Module]
    inputs: dict[str, torch.Tensor]
    depth: int

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]


def _blocks(module: torch.nn.Module, attr: str) -> list[torch.nn.Module]:
    for name, sub in module.named_modules():
        if name.split(".")[-1] == attr and isinstance(sub, torch.nn.ModuleList):
            return list(sub)
    raise ProblemDataError(f"the model has no ModuleList named {attr!r}")


def lora_model(name: str, depth: int, *, size: str = "small", rank: int = 8, batch_size: int = 4,
               seq_len: int | None = None, seed: int = 0) -> LoRAModel:
    """Zoo model ``name`` with LoRA of rank ``rank`` on its top ``depth`` blocks (``depth`` 0: none trainable)."""
    from peft import LoraConfig, get_peft_model

    if name not in LORA_TARGETS:
        raise ProblemDataError(f"`name` = {name!r}; expected one of {', '.join(map(repr, LORA_TARGETS))}")
    targets, attr, fan = LORA_TARGETS[name]
    z = build_model(name, size=size, batch_size=batch_size, seed=seed, input_size=seq_len)
    L = len(_blocks(z.module, attr))
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= L:
        raise ProblemDataError(f"`depth` = {depth!r}; expected an integer in 1..{L}")
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(targets),
                     layers_to_transform=list(range(L - depth, L)), layers_pattern=attr, fan_in_fan_out=fan)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers method deprecated in v5
        torch.manual_seed(seed + 7)
        module = get_peft_model(z.module, cfg)
        for n_, p in module.named_parameters():  # peft zero-initialises B: give it a small value to have gradients
            if "lora_B" in n_:
                torch.nn.init.normal_(p, std=1e-3)
    ids = z.example_inputs[0]
    labels = torch.zeros(ids.shape[0], dtype=torch.long) if z.family == "encoder" else ids
    return LoRAModel(name, module, _blocks(module, attr), {"input_ids": ids, "labels": labels}, depth)


@dataclass(frozen=True, slots=True)
class StepMeasurement:
    """One configuration's training step, measured.

    Attributes
    ----------
    depth, quantized, bits
        The configuration.
    saved_bytes
        Bytes autograd kept for backward (after quantization).
    saved_by_scope, floats_by_scope
        The same per block (``"block3"``) and outside the blocks (``"outside"``); floating elements kept at
        full precision per scope.
    lora_params
        Trainable parameters.
    state_bytes
        Bytes of the LoRA parameters, their gradients and Adam's state.
    frozen_bytes
        Bytes of every other parameter.
    step_time_s
        Wall time of a step (forward, backward, optimizer): the fastest repetition.
    grads
        The LoRA gradients of the first step (name -> tensor), to compare precisions.
    """

    depth: int
    quantized: int
    bits: int
    saved_bytes: int
    saved_by_scope: dict[str, int]
    floats_by_scope: dict[str, int]
    lora_params: int
    state_bytes: int
    frozen_bytes: int
    step_time_s: float
    grads: dict[str, torch.Tensor] = field(repr=False)

    @property
    def memory_bytes(self) -> int:
        """Saved activations plus LoRA state: what a configuration adds to the frozen weights."""
        return self.saved_bytes + self.state_bytes


class _Runner:
    """One configuration's model, optimizer and step (counts saved tensors on its first step)."""

    def __init__(self, lm: LoRAModel, quantized: int, bits: int, group: int) -> None:
        L, d = lm.n_layers, lm.depth
        if not 0 <= quantized <= d:
            raise ProblemDataError(f"`quantized` = {quantized!r}; expected an integer in 0..{d}")
        self.lm, self.quantized, self.bits, self.group = lm, quantized, bits if quantized else 0, group
        self.per_block = [bits if L - d <= i < L - d + quantized else 0 for i in range(L)]
        self.params = lm.trainable()
        self.opt = torch.optim.Adam(self.params, lr=1e-4)
        self.first: tuple[SavedTensors, dict[str, torch.Tensor]] | None = None
        self.times: list[float] = []
        lm.module.eval()  # no dropout: steps are deterministic

    def step(self, timed: bool) -> None:
        saved = SavedTensors.for_model(self.lm.module, group=self.group)
        handles = saved.attach(self.lm.blocks, self.per_block)
        t0 = time.perf_counter()
        try:
            with saved:
                loss = self.lm.module(**self.lm.inputs).loss
        finally:
            for h in handles:
                h.remove()
        loss.backward()
        if self.first is None:
            grads = {n: p.grad.detach().clone() for n, p in self.lm.module.named_parameters() if p.grad is not None}
            self.first = (saved, grads)
        self.opt.step()
        self.opt.zero_grad(set_to_none=False)
        if timed:
            self.times.append(time.perf_counter() - t0)

    def result(self) -> StepMeasurement:
        assert self.first is not None
        saved, grads = self.first
        nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
        state = nbytes(self.params) + nbytes(p.grad for p in self.params if p.grad is not None)
        state += sum(nbytes(v for v in s.values() if torch.is_tensor(v)) for s in self.opt.state.values())
        frozen = nbytes(p for p in self.lm.module.parameters() if not p.requires_grad)
        return StepMeasurement(self.lm.depth, self.quantized, self.bits, saved.bytes, dict(saved.by_scope),
                               dict(saved.floats_by_scope), sum(p.numel() for p in self.params), state, frozen,
                               min(self.times), grads)


def measure_many(name: str, configs: list[tuple[int, int, int]], *, rounds: int = 5, warmup: int = 2,
                 group: int = 64, fresh: bool = True, **model_kw: Any) -> list[StepMeasurement]:
    """Measure every configuration ``(depth, quantized, bits)`` of zoo model ``name``: each gets its own model
    (:func:`lora_model`, same seed), ``warmup`` untimed steps, then ``rounds`` rounds in which every
    configuration runs one timed step in turn (so a slow spell of the host hits all of them); a configuration's
    time is its fastest step. It all runs in a fresh interpreter inside
    :func:`~edgeplan.profiles.memory.steady_allocator` (:func:`~edgeplan.profiles.memory.in_fresh_process`), so
    two calls in one session time the same way.

    Parameters
    ----------
    name
        A zoo transformer with LoRA targets (``gpt2``, ``bert_base``, ``llama_small``).
    configs
        ``(depth, quantized, bits)`` triples (bits ignored when nothing is quantized).
    rounds, warmup
        Timed rounds and untimed first steps.
    group
        Elements per quantization scale.
    fresh
        Measure in a fresh interpreter (``False``: in this process, without the steady allocator; the bytes and
        gradients are the same, the times are not comparable).
    model_kw
        :func:`lora_model`'s keywords (``size``, ``rank``, ``batch_size``, ``seq_len``, ``seed``).
    """
    configs = [tuple(int(v) for v in c) for c in configs]
    if not fresh:
        return _measure_here(name, configs, rounds, warmup, group, model_kw)
    return in_fresh_process(_measure_here, name, configs, rounds, warmup, group, model_kw)


def _measure_here(name: str, configs: list[tuple[int, int, int]], rounds: int, warmup: int, group: int,
                  model_kw: dict[str, Any]) -> list[StepMeasurement]:
    runners = [_Runner(lora_model(name, d, **model_kw), q, b or 8, group) for d, q, b in configs]
    for r in runners:
        for _ in range(warmup):
            r.step(False)
    for _ in range(rounds):
        for r in runners:
            r.step(True)
    return [r.result() for r in runners]


def measure_config(name: str, depth: int, quantized: int = 0, bits: int = 8, *, rounds: int = 5,
                   fresh: bool = True, **model_kw: Any) -> StepMeasurement:
    """One configuration (:func:`measure_many`)."""
    return measure_many(name, [(depth, quantized, bits)], rounds=rounds, fresh=fresh, **model_kw)[0]


def _peak_child(name: str, config: tuple[int, int, int], group: int, model_kw: dict[str, Any]) -> dict[str, Any]:
    d, q, b = config
    runner = _Runner(lora_model(name, d, **model_kw), q, b or 8, group)
    with MemoryProbe() as probe:
        runner.step(True)
    if probe.mode != "rss":
        raise ProblemDataError("peak resident memory needs /proc/self/clear_refs (Linux)")
    m = runner.result()
    return {"depth": d, "quantized": q, "bits": b, "peak_bytes": round(probe.peak_mb * 2**20),
            "saved_bytes": m.saved_bytes, "state_bytes": m.state_bytes, "rss_before_bytes": probe.start_kb * 1024}


def peak_rss(name: str, configs: list[tuple[int, int, int]], *, group: int = 64,
             **model_kw: Any) -> list[dict[str, Any]]:
    """Peak resident memory of one training step of each configuration, each in a fresh process (Linux).

    The process builds the LoRA model, reads its resident set, resets the kernel's high-water mark
    (``/proc/self/clear_refs``), runs the first step (forward, backward, Adam) and reads the mark: ``peak_bytes``
    is what the step added at its peak, next to the counted ``saved_bytes`` and ``state_bytes`` (LoRA parameters,
    gradients, Adam state). The peak also holds the step's temporaries (logits, softmax, attention scores,
    quantization buffers), which the counts leave out (:func:`~edgeplan.profiles.memory.in_fresh_process`, with
    glibc's default allocator).

    Parameters
    ----------
    name
        A zoo transformer with LoRA targets.
    configs
        ``(depth, quantized, bits)`` triples.
    group, model_kw
        As in :func:`measure_many`.
    """
    if not sys.platform.startswith("linux"):
        raise ProblemDataError(f"peak resident memory is read from /proc; this platform is {sys.platform!r}")
    return [in_fresh_process(_peak_child, name, tuple(c), group, model_kw, steady=False) for c in configs]


def anchors(n_layers: int, bits: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """The calibration configurations: depths 1, L/2 and L unquantized, and L/2 and L quantized layers at depth
    L for each bit width."""
    L, h = n_layers, max(1, n_layers // 2)
    out = [(1, 0, 0), (h, 0, 0), (L, 0, 0)] + [(L, q, b) for b in bits for q in (h, L)]
    return list(dict.fromkeys(out))


def fit_costs(meas: dict[tuple[int, int, int], StepMeasurement], n_layers: int,
              bits: tuple[int, ...]) -> LayerCosts:
    r""":class:`LayerCosts` in host seconds from the :func:`anchors`' measurements: memory from the per-block
    counts of :math:`(L,0)` and :math:`(L,L,b)`; time by least squares
    :math:`t = a + g\,d + \sum_b (h_b\,q + c_b [q > 0])\,[\text{bits} = b]` over the anchors (:math:`c_b`:
    the cost of quantizing at all, carried by the lowest trainable layer)."""
    L = n_layers
    full = meas[(L, 0, 0)]
    keys = list(meas)
    X = np.array([[1.0, d] + [float(q if b == bb else 0) for bb in bits] + [float(q > 0 and b == bb) for bb in bits]
                  for d, q, b in keys])
    y = np.array([meas[k].step_time_s for k in keys])
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    nb = len(bits)
    a, g = coef[0], max(coef[1], 0.0)
    h = dict(zip(bits, np.maximum(coef[2:2 + nb], 0.0), strict=True))
    fixed = dict(zip(bits, coef[2 + nb:], strict=True))  # the cost of quantizing at all, on the lowest layer
    s, f = full.saved_by_scope, full.floats_by_scope
    inner = lambda d: float(d.get("block1", d.get("block0", 0)))  # noqa: E731
    per_param = (full.state_bytes / max(full.lora_params, 1)) / STATE_BYTES_PER_PARAM  # 1.0 in fp32 Adam
    return LayerCosts(
        forward_flops=np.zeros(L), backward_flops=np.full(L, g), head_forward_flops=max(a, 0.0),
        activation_bytes=np.full(L, float(inner(s))), bottom_activation_bytes=np.full(L, float(s.get("block0", 0))),
        quantizable_elements=np.full(L, inner(f)), bottom_quantizable_elements=np.full(L, float(f.get("block0", 0))),
        quant_flops=np.full(L, h[bits[0]]), quant_flops_by_bits={b: np.full(L, v) for b, v in h.items()},
        bottom_quant_flops_by_bits={b: np.full(L, max(h[b] + fixed[b], 0.0)) for b in bits},
        quantized_bytes={b: np.full(L, inner(meas[(L, L, b)].saved_by_scope)) for b in bits},
        bottom_quantized_bytes={b: np.full(L, float(meas[(L, L, b)].saved_by_scope.get("block0", 0)))
                                for b in bits},
        lora_params=np.full(L, full.lora_params * per_param / L), frozen_bytes=float(full.frozen_bytes),
        workspace_bytes=float(s.get("outside", 0)), upload_bytes_per_param=2.0)


def _every_config(name: str, bits: tuple[int, ...], model_kw: dict[str, Any]) -> tuple[int, list[tuple[int, ...]]]:
    L = lora_model(name, 1, **model_kw).n_layers
    return L, [tuple(int(v) for v in c) for c in fedquad_configs(L, bits)]


def compare(name: str, bits: tuple[int, ...] = (8, 4), *, rounds: int = 5, fresh: bool = True,
            **model_kw: Any) -> list[dict[str, Any]]:
    """Predicted against measured memory (saved activations + LoRA state) and step time of every FedQuad
    configuration of ``name``. Everything is measured together (:func:`measure_many`). Memory is predicted from
    the :func:`anchors` alone. Step time is cross-validated: the configurations other than the anchors are split
    in two folds by their order, and each fold is predicted from a fit (:func:`fit_costs`) on the anchors and
    the other fold, so no prediction has seen its own configuration's time; the anchors' rows (``anchor``) carry
    the first fold's fitted value. One row per configuration.

    Parameters
    ----------
    name
        A zoo transformer with LoRA targets.
    bits
        Activation bit widths.
    rounds, fresh
        Timed rounds, and whether to measure in a fresh interpreter (:func:`measure_many`).
    model_kw
        :func:`lora_model`'s keywords.
    """
    L, configs = _every_config(name, bits, model_kw)
    meas = dict(zip(configs, measure_many(name, configs, rounds=rounds, fresh=fresh, **model_kw), strict=True))
    anchor = anchors(L, bits)
    others = [c for c in configs if c not in anchor]
    costs = fit_costs({k: meas[k] for k in anchor}, L, bits)
    tab = costs.fedquad_table(bits)
    index = {tuple(int(v) for v in cfg): i for i, cfg in enumerate(tab["config"])}
    time_pred: dict[tuple[int, int, int], float] = {}
    for fold in (0, 1):
        cal = anchor + others[fold::2]
        fitted = fit_costs({k: meas[k] for k in cal}, L, bits).fedquad_table(bits)["flops"]
        for k in (others[1 - fold::2] + (anchor if fold == 0 else [])):
            time_pred[k] = float(fitted[index[k]])
    rows = []
    for cfg in configs:
        got, m, t = meas[cfg], tab["memory_bytes"][index[cfg]], time_pred[cfg]
        pred_mem = m - costs.frozen_bytes
        rows.append({"model": name, "depth": cfg[0], "quantized": cfg[1], "bits": cfg[2], "anchor": cfg in anchor,
                     "memory_pred": pred_mem, "memory_meas": got.memory_bytes,
                     "memory_err": pred_mem / got.memory_bytes - 1, "time_pred_s": t, "time_meas_s": got.step_time_s,
                     "time_err": t / got.step_time_s - 1})
    return rows


def compare_peak(name: str, bits: tuple[int, ...] = (8, 4), **model_kw: Any) -> list[dict[str, Any]]:
    r"""Predicted against measured peak resident memory of a step (:func:`peak_rss`), every FedQuad
    configuration of ``name``. The prediction adds to the counted bytes a step keeps (saved activations + LoRA
    state, exact: :func:`compare`) the step's temporaries, :math:`T_0 + T_b [q > 0]` for bit width :math:`b`,
    each the median of ``peak - kept`` over the :func:`anchors` with that quantization.

    Parameters
    ----------
    name
        A zoo transformer with LoRA targets.
    bits
        Activation bit widths.
    model_kw
        :func:`lora_model`'s keywords.
    """
    L, configs = _every_config(name, bits, model_kw)
    rows = peak_rss(name, configs, **model_kw)
    anchor = set(anchors(L, bits))
    extra = lambda r: r["peak_bytes"] - r["saved_bytes"] - r["state_bytes"]  # noqa: E731
    key = lambda r: r["bits"] if r["quantized"] else 0  # noqa: E731
    temp = {k: float(np.median([extra(r) for r in rows if key(r) == k and (r["depth"], r["quantized"], r["bits"])
                                in anchor])) for k in {key(r) for r in rows}}
    for r in rows:
        r["model"], r["anchor"] = name, (r["depth"], r["quantized"], r["bits"]) in anchor
        r["peak_pred"] = r["saved_bytes"] + r["state_bytes"] + temp[key(r)]
        r["peak_err"] = r["peak_pred"] / r["peak_bytes"] - 1
    return rows


__all__ = ["LORA_TARGETS", "LoRAModel", "StepMeasurement", "anchors", "compare", "compare_peak", "fit_costs",
           "lora_model", "measure_config", "measure_many", "peak_rss"]
