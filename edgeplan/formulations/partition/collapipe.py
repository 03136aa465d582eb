r"""CollaPipe: one slot of collaborative pipeline training of a Transformer encoder over D2D radio links.

Model (a reconstruction: CollaPipe's own equations are not public; see ``docs/models/partition.md``)
------------------------------------------------------------------------------------------------------
A cluster of :math:`K` devices in a given order trains the :math:`L` encoder blocks of a Transformer as a
pipeline: device :math:`k` holds the contiguous segment of :math:`\delta_k \ge 1` blocks
(:math:`\sum_k \delta_k = L`), activations go forward and gradients back over the D2D link :math:`k \to k+1`,
and after :math:`\tau` local iterations the cluster uploads its encoder (:math:`T^{\rm up}`, given). A batch of
:math:`B` samples runs as :math:`M` micro-batches of :math:`b = B/M` (:math:`M` from an allowed set). With
:math:`W_v` the forward FLOPs per sample of block :math:`v`, :math:`\rho` the backward/forward ratio and
:math:`f_k` device :math:`k`'s FLOP/s, per micro-batch

.. math::

    c_k = \frac{(1+\rho)\, b \sum_{v \in k} W_v}{f_k},\qquad
    x_k = \frac{2 \cdot 8\, b\, h}{r_k},\qquad
    r_k = \beta_k \log_2\!\Big(1 + \frac{p_k g_k}{N_0 \beta_k}\Big),

with :math:`h` the bytes per sample of the hidden state that crosses every cut (a Transformer encoder's
blocks all output ``seq_len x d_model``), link :math:`k` half-duplex with bandwidth
:math:`\beta_k = u_k W/U` (:math:`u_k \ge 1` of :math:`U` units, :math:`\sum u_k \le U`) and power
:math:`p_k` from a set of levels, at most both ends' caps. The links are stages of the flow shop
(1F1B steady state, as :class:`~.pipeline.PipelinePartition`'s estimate):

.. math::

    T^{\rm it} = \sum_k c_k + \sum_k x_k + e + y + (M-1)\max\big(\max_k c_k, \max_k x_k, e, y\big),\qquad
    T = \tau\, T^{\rm it} + T^{\rm up},

with :math:`e` the edge's decoder step and :math:`y` the hop to the edge and back per micro-batch (optional,
``edge_s_per_sample`` and ``d2e_rate_bps``; the edge's energy is not counted).

Energy of device :math:`k` per round: compute :math:`\tau \epsilon_k (1+\rho) B \sum_{v\in k} W_v` plus
transmission: it sends the activations on link :math:`k` and the gradients on link :math:`k-1`, each
:math:`\tau p\, 8 B h / r` on its link. Memory of device :math:`k`: weights, gradients and optimizer state
:math:`\sigma \sum_{v \in k} n_v` plus the activations of :math:`\phi_k` in-flight micro-batches,
:math:`\phi_k b \sum_{v \in k} a_v \le \text{mem}_k`, :math:`\phi_k = M` (GPipe) or
:math:`\min(M, K - k)` (1F1B, :math:`k = 0..K-1`). The slot objective (minimized) is the drift-plus-penalty
weighting

.. math::

    V\, T + \sum_k w_k E_k

(:math:`w_k` the energy queues of a long-term controller; :math:`w = 0`: latency only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, slack_tol, violations_le

SCHEDULES = ("1f1b", "gpipe")


def link_rate(units: Any, power_w: Any, gain: Any, bandwidth_hz: float, n_units: int,
              noise_w_per_hz: float) -> np.ndarray:
    r"""Shannon rate :math:`\beta \log_2(1 + p g / (N_0 \beta))`, :math:`\beta = u W / U` (bit/s)."""
    beta = np.asarray(units, dtype=float) * (bandwidth_hz / n_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.asarray(power_w, dtype=float) * np.asarray(gain, dtype=float) / (noise_w_per_hz * beta)
        return np.where(beta > 0, beta * np.log2(1.0 + snr), 0.0)


@dataclass(frozen=True)
class CollaPipePlan:
    r"""A slot's decision.

    Attributes
    ----------
    segments
        :math:`\delta_k`, blocks per device in order (each >= 1, summing to :math:`L`).
    micro_batches
        :math:`M`.
    units
        :math:`u_k`, bandwidth units of each link :math:`k \to k+1`.
    power
        Index into ``power_levels_w`` of each link's transmit power.
    """

    segments: tuple[int, ...]
    micro_batches: int
    units: tuple[int, ...]
    power: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"segments": list(self.segments), "micro_batches": self.micro_batches, "units": list(self.units),
                "power": list(self.power)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollaPipePlan:
        return cls(tuple(int(v) for v in d["segments"]), int(d["micro_batches"]), tuple(int(v) for v in d["units"]),
                   tuple(int(v) for v in d["power"]))


@dataclass(frozen=True)
class CollaPipeEvaluation:
    """A plan's per-micro-batch stage and link times (s), round latency (s), energy (J) and memory (bytes)."""

    compute_s: np.ndarray
    link_s: np.ndarray
    iteration_s: float
    round_s: float
    energy_j: np.ndarray
    memory_bytes: np.ndarray
    objective: float


@dataclass(frozen=True)
class CollaPipeSlot:
    """One CollaPipe slot (see the module docstring for the model).

    Attributes
    ----------
    block_flops
        :math:`W_v`, forward FLOPs per sample of each encoder block, shape ``(L,)``.
    block_params
        :math:`n_v`, parameters per block.
    block_act_bytes
        :math:`a_v`, bytes per sample a block keeps for backward.
    hidden_bytes
        :math:`h`, bytes per sample crossing a cut (activations forward, gradients back).
    batch_size
        :math:`B`.
    device_flops, device_memory, energy_per_flop
        :math:`f_k` (FLOP/s), memory caps (bytes) and :math:`\\epsilon_k` (J/FLOP), shape ``(K,)``.
    gains
        :math:`g_k`, linear channel gain of link :math:`k \\to k+1` this slot, shape ``(K-1,)``.
    power_cap_w
        Transmit-power cap of each device (W), shape ``(K,)``: link :math:`k` uses a level at most
        :math:`\\min(\\bar p_k, \\bar p_{k+1})`.
    bandwidth_hz, n_units
        :math:`W` and :math:`U`.
    power_levels_w
        Allowed transmit powers (W), increasing.
    noise_w_per_hz
        :math:`N_0`.
    micro_batches
        Allowed :math:`M` (each dividing :math:`B`); ``()``: every divisor of :math:`B` up to 16.
    backward_ratio, state_bytes_per_param
        :math:`\\rho` and :math:`\\sigma` (16: fp32 weights, gradients and Adam's two moments).
    local_iters, upload_s
        :math:`\\tau` and :math:`T^{\\rm up}`.
    edge_s_per_sample, d2e_rate_bps
        The edge's decoder step (forward and backward, s per sample) and the rate of the hop that carries each
        micro-batch's encoder output to the edge and its gradient back: an extra stage
        :math:`e = b\\,t^{\\rm edge}` and link :math:`y = 2 \\cdot 8 b h / r^{\\rm D2E}` of the pipeline
        (0 and ``inf`` by default: not modelled).
    schedule
        ``"1f1b"`` or ``"gpipe"`` (in-flight micro-batches in memory).
    latency_weight, energy_weights
        :math:`V` and :math:`w_k`.
    name
        A label.
    """

    block_flops: Any
    block_params: Any
    block_act_bytes: Any
    hidden_bytes: float
    batch_size: int
    device_flops: Any
    device_memory: Any
    energy_per_flop: Any
    gains: Any
    power_cap_w: Any
    bandwidth_hz: float = 20e6
    n_units: int = 16
    power_levels_w: Any = (0.05, 0.1, 0.2)
    noise_w_per_hz: float = 10 ** (-174 / 10) * 1e-3
    micro_batches: Sequence[int] = ()
    backward_ratio: float = 2.0
    state_bytes_per_param: float = 16.0
    local_iters: int = 1
    upload_s: float = 0.0
    edge_s_per_sample: float = 0.0
    d2e_rate_bps: float = math.inf
    schedule: str = "1f1b"
    latency_weight: float = 1.0
    energy_weights: Any = None
    name: str = "collapipe-slot"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        s = object.__setattr__
        flops = as_array("block_flops", self.block_flops, shape=(None,), min_value=0)
        L = flops.size
        if L == 0:
            raise ProblemDataError("`block_flops` is empty; expected at least one encoder block")
        s(self, "block_flops", flops)
        s(self, "block_params", as_array("block_params", self.block_params, shape=(L,), min_value=0))
        s(self, "block_act_bytes", as_array("block_act_bytes", self.block_act_bytes, shape=(L,), min_value=0))
        s(self, "hidden_bytes", as_scalar("hidden_bytes", self.hidden_bytes, min_value=0))
        B = int(as_scalar("batch_size", self.batch_size, min_value=1))
        if B != self.batch_size:
            raise ProblemDataError(f"`batch_size` = {self.batch_size!r}; expected a positive integer")
        s(self, "batch_size", B)
        fl = as_array("device_flops", self.device_flops, shape=(None,), min_value=0, strict_min=True)
        K = fl.size
        if not 1 <= K <= L:
            raise ProblemDataError(f"`device_flops` has {K} devices; expected 1..{L} (each holds >= 1 block)")
        s(self, "device_flops", fl)
        s(self, "device_memory", as_array("device_memory", self.device_memory, shape=(K,), min_value=0,
                                          allow_inf=True))
        s(self, "energy_per_flop", as_array("energy_per_flop", self.energy_per_flop, shape=(K,), min_value=0))
        s(self, "gains", as_array("gains", self.gains, shape=(K - 1,), min_value=0, strict_min=True))
        s(self, "power_cap_w", as_array("power_cap_w", self.power_cap_w, shape=(K,), min_value=0))
        s(self, "bandwidth_hz", as_scalar("bandwidth_hz", self.bandwidth_hz, min_value=0, strict_min=True))
        U = int(as_scalar("n_units", self.n_units, min_value=max(K - 1, 1)))
        s(self, "n_units", U)
        lv = as_array("power_levels_w", self.power_levels_w, shape=(None,), min_value=0, strict_min=True)
        if lv.size == 0 or np.any(np.diff(lv) <= 0):
            raise ProblemDataError(f"`power_levels_w` = {lv.tolist()!r}; expected increasing positive powers")
        s(self, "power_levels_w", lv)
        s(self, "noise_w_per_hz", as_scalar("noise_w_per_hz", self.noise_w_per_hz, min_value=0, strict_min=True))
        ms = tuple(int(m) for m in self.micro_batches) or tuple(m for m in range(1, min(B, 16) + 1) if B % m == 0)
        bad = [m for m in ms if m < 1 or B % m]
        if bad:
            raise ProblemDataError(f"`micro_batches` = {list(self.micro_batches)!r}; expected divisors of "
                                   f"batch_size = {B}")
        s(self, "micro_batches", tuple(sorted(set(ms))))
        s(self, "backward_ratio", as_scalar("backward_ratio", self.backward_ratio, min_value=0))
        s(self, "state_bytes_per_param", as_scalar("state_bytes_per_param", self.state_bytes_per_param,
                                                   min_value=0))
        s(self, "local_iters", int(as_scalar("local_iters", self.local_iters, min_value=1)))
        s(self, "upload_s", as_scalar("upload_s", self.upload_s, min_value=0))
        s(self, "edge_s_per_sample", as_scalar("edge_s_per_sample", self.edge_s_per_sample, min_value=0))
        s(self, "d2e_rate_bps", float(as_array("d2e_rate_bps", [self.d2e_rate_bps], shape=(1,), min_value=0,
                                               strict_min=True, allow_inf=True)[0]))
        one_of("schedule", self.schedule, SCHEDULES)
        s(self, "latency_weight", as_scalar("latency_weight", self.latency_weight, min_value=0))
        w = np.zeros(K) if self.energy_weights is None else self.energy_weights
        s(self, "energy_weights", as_array("energy_weights", w, shape=(K,), min_value=0))

    @property
    def n_devices(self) -> int:
        return int(self.device_flops.size)

    @property
    def n_blocks(self) -> int:
        return int(self.block_flops.size)

    def link_power_ok(self) -> np.ndarray:
        """``(K-1, P)``: level allowed on each link (at most both ends' caps)."""
        cap = np.minimum(self.power_cap_w[:-1], self.power_cap_w[1:])
        return self.power_levels_w[None, :] <= cap[:, None] + slack_tol(cap, FEAS_TOL)[:, None]

    # -- evaluation ---------------------------------------------------------------------------------------------
    def _parse(self, plan: Any) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        if not isinstance(plan, CollaPipePlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a CollaPipePlan")
        K = self.n_devices
        seg = int_vector("segments", plan.segments, K)
        if np.any(seg < 1) or seg.sum() != self.n_blocks:
            raise PlanError(f"`segments` = {seg.tolist()!r}; expected {K} sizes >= 1 summing to {self.n_blocks}")
        M = int(plan.micro_batches)
        if M not in self.micro_batches:
            raise PlanError(f"`micro_batches` = {plan.micro_batches!r}; expected one of {list(self.micro_batches)}")
        units = int_vector("units", plan.units, K - 1)
        if np.any(units < 1):
            raise PlanError(f"`units` = {units.tolist()!r}; expected integers >= 1")
        pw = int_vector("power", plan.power, K - 1)
        if np.any((pw < 0) | (pw >= self.power_levels_w.size)):
            raise PlanError(f"`power` = {pw.tolist()!r}; expected level indices in 0..{self.power_levels_w.size - 1}")
        return seg, M, units, pw

    def evaluate(self, plan: CollaPipePlan) -> CollaPipeEvaluation:
        seg, M, units, pw = self._parse(plan)
        K, B, b = self.n_devices, self.batch_size, self.batch_size / M
        ends = np.cumsum(seg)
        starts = ends - seg
        W = np.add.reduceat(self.block_flops, starts)
        n = np.add.reduceat(self.block_params, starts)
        a = np.add.reduceat(self.block_act_bytes, starts)
        work = (1.0 + self.backward_ratio) * W
        comp = b * work / self.device_flops
        rate = link_rate(units, self.power_levels_w[pw], self.gains, self.bandwidth_hz, self.n_units,
                         self.noise_w_per_hz)
        bits = 8.0 * self.hidden_bytes
        with np.errstate(divide="ignore", invalid="ignore"):
            per_bit = np.where(bits > 0, 1.0 / rate, 0.0)
        link = 2.0 * b * bits * per_bit
        e, y = self.edge_stage_s(M)
        it = float(comp.sum() + link.sum() + e + y
                   + (M - 1) * max(comp.max(initial=0.0), link.max(initial=0.0), e, y))
        rnd = self.local_iters * it + self.upload_s
        tx = self.power_levels_w[pw] * B * bits * per_bit  # one direction, per iteration
        energy = self.energy_per_flop * B * work
        energy[:-1] += tx
        energy[1:] += tx
        energy = self.local_iters * energy
        phi = np.full(K, M) if self.schedule == "gpipe" else np.minimum(M, K - np.arange(K))
        mem = self.state_bytes_per_param * n + phi * b * a
        obj = self.latency_weight * rnd + float(self.energy_weights @ energy)
        return CollaPipeEvaluation(comp, link, it, rnd, energy, mem, obj)

    def objective(self, plan: CollaPipePlan) -> float:
        return self.evaluate(plan).objective

    def check(self, plan: CollaPipePlan, tol: float = FEAS_TOL) -> list[Violation]:
        _, _, units, pw = self._parse(plan)
        e = self.evaluate(plan)
        names = [f"memory[{k}]" for k in range(self.n_devices)]
        out = violations_le(names, e.memory_bytes, self.device_memory, tol)
        out += violations_le(["bandwidth units"], [float(units.sum())], [float(self.n_units)], tol)
        cap = np.minimum(self.power_cap_w[:-1], self.power_cap_w[1:])
        out += violations_le([f"power[{k}]" for k in range(pw.size)], self.power_levels_w[pw], cap, tol)
        return out

    def edge_stage_s(self, M: int) -> tuple[float, float]:
        """The edge stage and the D2E hop per micro-batch (s) with :math:`M` micro-batches."""
        b = self.batch_size / M
        hop = 2.0 * 8.0 * b * self.hidden_bytes / self.d2e_rate_bps if self.hidden_bytes > 0 else 0.0
        return b * self.edge_s_per_sample, hop

    def on_device(self, k: int) -> dict[str, float]:
        r"""Device ``k`` training the whole encoder alone on the full batch (the on-device baseline): round
        latency :math:`\tau (1+\rho) B \sum_v W_v / f_k + T^{\rm up}`, energy
        :math:`\tau \epsilon_k (1+\rho) B \sum_v W_v`, memory :math:`\sigma \sum_v n_v + B \sum_v a_v`, and
        whether that memory fits device ``k``."""
        work = (1.0 + self.backward_ratio) * float(self.block_flops.sum()) * self.batch_size
        mem = self.state_bytes_per_param * float(self.block_params.sum()) \
            + self.batch_size * float(self.block_act_bytes.sum())
        return {"round_s": self.local_iters * work / float(self.device_flops[k]) + self.upload_s,
                "energy_j": self.local_iters * float(self.energy_per_flop[k]) * work, "memory_bytes": mem,
                "fits": float(mem <= self.device_memory[k])}

    def split_learning(self, k: int, edge_flops: float, d2e_rate_bps: float | None = None) -> dict[str, float]:
        r"""Split learning with one cut (the split-learning baseline): device ``k`` trains the first :math:`c`
        encoder blocks on the full batch, sends the cut's activations to the edge over the D2E link (and gets
        their gradients back at the same rate), and the edge trains the other :math:`L - c` blocks and the
        decoder at ``edge_flops``:

        .. math::

            T(c) = \tau\Big[\frac{(1+\rho) B \sum_{v<c} W_v}{f_k} + \frac{2 \cdot 8 B h}{r^{\rm D2E}}
            + \frac{(1+\rho) B \sum_{v\ge c} W_v}{f^{\rm edge}} + B\,t^{\rm edge}\Big] + T^{\rm up},

        energy :math:`\tau[\epsilon_k (1+\rho) B \sum_{v<c} W_v + \bar p_k\, 8 B h / r^{\rm D2E}]`, memory
        :math:`\sigma \sum_{v<c} n_v + B \sum_{v<c} a_v`. Returns the fastest cut :math:`c \in 1..L` whose
        memory fits (``fits`` 0 when none does: then the cut of least memory, for reference).

        Parameters
        ----------
        k
            The device holding the data.
        edge_flops
            The edge server's training speed (FLOP/s, > 0).
        d2e_rate_bps
            The device-to-edge rate (bit/s, > 0); default the slot's ``d2e_rate_bps``.
        """
        f_edge = as_scalar("edge_flops", edge_flops, min_value=0, strict_min=True)
        rate = self.d2e_rate_bps if d2e_rate_bps is None else as_scalar("d2e_rate_bps", d2e_rate_bps, min_value=0,
                                                                         strict_min=True)
        B, tau = self.batch_size, self.local_iters
        work = (1.0 + self.backward_ratio) * B * np.cumsum(self.block_flops)  # blocks 0..c-1 on the device
        total = (1.0 + self.backward_ratio) * B * float(self.block_flops.sum())
        bits = 8.0 * B * self.hidden_bytes
        hop = bits / rate if bits > 0 else 0.0
        rnd = tau * (work / self.device_flops[k] + 2.0 * hop + (total - work) / f_edge
                     + B * self.edge_s_per_sample) + self.upload_s
        energy = tau * (self.energy_per_flop[k] * work + self.power_cap_w[k] * hop)
        mem = self.state_bytes_per_param * np.cumsum(self.block_params) + B * np.cumsum(self.block_act_bytes)
        fits = mem <= self.device_memory[k]
        c = int(np.argmin(np.where(fits, rnd, np.inf))) if fits.any() else int(np.argmin(mem))
        return {"cut": float(c + 1), "round_s": float(rnd[c]), "energy_j": float(energy[c]),
                "memory_bytes": float(mem[c]), "fits": float(fits.any())}

    def describe(self) -> str:
        return (f"CollaPipe slot {self.name}: {self.n_devices} devices, {self.n_blocks} encoder blocks, batch "
                f"{self.batch_size}, M in {list(self.micro_batches)}, {self.n_units} bandwidth units of "
                f"{self.bandwidth_hz / self.n_units / 1e6:.3g} MHz, {self.power_levels_w.size} power levels")

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class CollaPipeHorizon:
    r""":math:`T` slots of one cluster: the slot data with each slot's channel gains, and long-term budgets.

    The long-term problem: choose a plan per slot minimizing the time-average round latency subject to
    :math:`\frac1T \sum_t E_k(t) \le \bar E_k` for every device (energy per round, J).

    Attributes
    ----------
    slot
        The slot data (its ``gains`` and weights are replaced slot by slot).
    gains
        ``(T, K-1)`` linear D2D gains.
    energy_budget_j
        :math:`\bar E_k`, shape ``(K,)`` (``inf``: no budget).
    """

    slot: CollaPipeSlot
    gains: Any
    energy_budget_j: Any

    def __post_init__(self) -> None:
        K = self.slot.n_devices
        g = as_array("gains", self.gains, shape=(None, K - 1), min_value=0, strict_min=True)
        if g.shape[0] == 0:
            raise ProblemDataError("`gains` has no slots; expected shape (T, K-1) with T >= 1")
        object.__setattr__(self, "gains", g)
        object.__setattr__(self, "energy_budget_j", as_array("energy_budget_j", self.energy_budget_j, shape=(K,),
                                                             min_value=0, allow_inf=True))

    @property
    def n_slots(self) -> int:
        return int(self.gains.shape[0])

    def at(self, t: int, latency_weight: float = 1.0, energy_weights: Any = None) -> CollaPipeSlot:
        r"""Slot ``t`` with the objective :math:`V T + w \cdot E`."""
        from dataclasses import replace

        return replace(self.slot, gains=self.gains[t], latency_weight=latency_weight,
                       energy_weights=energy_weights, name=f"{self.slot.name}-t{t}")

    def mean_slot(self) -> CollaPipeSlot:
        """The slot at the time-average gains (a static plan's view)."""
        from dataclasses import replace

        return replace(self.slot, gains=self.gains.mean(axis=0), energy_weights=None, latency_weight=1.0)


__all__ = ["SCHEDULES", "CollaPipeEvaluation", "CollaPipeHorizon", "CollaPipePlan", "CollaPipeSlot", "link_rate"]
