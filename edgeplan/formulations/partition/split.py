r"""Split inference: place a model's blocks on an ordered path of 2 or 3 tiers (device -> edge -> cloud).

Model
-----
A model profile (chain or DAG, blocks :math:`v = 1..L` in topological order) runs over tiers
:math:`t = 0..T-1` (:math:`T \in \{2, 3\}`) joined by links :math:`l = 0..T-2` (link :math:`l` joins tiers
:math:`l` and :math:`l+1`; rate :math:`r_l` bit/s, latency :math:`\lambda_l` s). The raw input is on tier 0.
A placement :math:`\tau_v` is **monotone**: :math:`\tau_u \le \tau_w` for every edge :math:`(u, w)` (data
only moves forward; equivalently each :math:`D_l = \{v: \tau_v \le l\}` is ancestor-closed and
:math:`D_0 \subseteq D_1`). With :math:`b` samples per request, edge bytes :math:`e_{uw}` and output bytes
:math:`a_u` (per sample, :math:`e'_{uw} = \min(e_{uw}, a_u)`), block :math:`u`'s output crosses link
:math:`l` with

.. math:: \beta_{u,l} = b\,\min\Big(a_u,\ \sum_{(u,w) \in E,\ \tau_w > l} e'_{uw}\Big)\,[\tau_u \le l]

native bytes (the profile's cut rule, :meth:`ModelProfile.cut_bytes`); the input crosses link :math:`l` with
:math:`b\,a_{\rm in}` bytes when a block reading it is beyond :math:`l`. A crossing tensor travels at width
:math:`w_{u,l} \in \mathcal W_u = \{w \in \mathcal B : w \ge w^{\min}_u\} \cup \{w_0\}` bits per element
(:math:`w_0` the native width; COACH's transmission quantization), so link :math:`l` carries
:math:`S_l = \sum_u \beta_{u,l} w_{u,l}/w_0 + b\,a_{\rm in}[\cdot]` bytes. A quantized hop costs
:math:`\beta (1 + w/w_0)/\Gamma_l` on the sending tier and :math:`\beta (w/w_0 + 1)/\Gamma_{l+1}` on the
receiving tier (read and write at the tier's memory bandwidth :math:`\Gamma`; UAQ is memory-bound). Then

.. math::

    C_t &= \sum_{v:\tau_v = t} t_{v,t} + \sum_{u,\ l = t} q_{u,l} + \sum_{u,\ l = t-1} d_{u,l}
        &&\text{(tier stage time)}\\
    X_l &= 8 S_l / r_l,\qquad g_l = [\exists v: \tau_v > l]
        &&\text{(link stage time; link in use)}\\
    \text{latency} &= \sum_t C_t + \sum_l (X_l + \lambda_l g_l)\\
    \text{energy} &= P^{\rm idle}_0\,\text{latency} + P^{\rm dyn}_0 C_0 + P^{\rm tx} X_0
        &&\text{(tier 0's battery)}\\
    \Pi &= \max\big(\max_{t \le t^*} C_t,\ \max_{l < t^*} X_l\big),\quad t^* = \max_v \tau_v
        &&\text{(pipeline period over a request stream)}

with :math:`t_{v,t}` the block's time on tier :math:`t` (:func:`~edgeplan.formulations.partition.common.block_times`:
measured when the profile has a measurement for the tier's device, else from FLOPs). The objective
(``minimize``) is ``"latency"`` (Neurosurgeon, DADS), ``"energy"`` (Neurosurgeon) or ``"throughput"``, the
period :math:`\Pi` (COACH: stage period = max of stage compute and transfer times). Constraints: memory
:math:`\sum_{v \in t}(p_v + q_v) + b\max_{v \in t}(i_v + a_v) \le M_t` (weights in the compute dtype, buffers,
and the largest input+output activation of a block on the tier) and, optionally, latency
:math:`\le T_{\max}` (COACH's :math:`T_e + T_t + T_c \le T_{\max}`). :meth:`SplitInference.evaluate` also
reports the pipeline **bubble**, the idle time per period :math:`\sum_{s}(\Pi - s)` over the stages in use.

Choices where the papers leave a detail open
--------------------------------------------
* Latency is the sum of stage times (a request runs tier after tier, as in Neurosurgeon and DADS; no overlap
  of parallel branches across tiers). The result's return trip is not modelled (it is a few bytes).
* A link's latency :math:`\lambda_l` is paid once when anything runs beyond it; it adds to latency but is
  not part of the period (it delays, it does not occupy the link).
* Quantization is hop by hop: a tensor crossing two links is dequantized and re-quantized by the relay
  (each hop has its own width); with :math:`T = 2` this is COACH's model. The raw input is sent as is.
* Device energy: idle power over the whole request, dynamic power :math:`\kappa f_{\max}^3` while tier 0
  computes, radio power while link 0 transmits (``tx_power_w``, default the device's ``max_tx_power_w``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le
from edgeplan.formulations.partition.common import (
    block_times,
    check_devices,
    check_model,
    named_profile,
    native_bits,
    per_item,
    positive_int,
)
from edgeplan.profiles.devices import DTYPE_BYTES, DeviceProfile
from edgeplan.profiles.links import WiredLink
from edgeplan.profiles.model import ModelProfile

#: Features of a split problem that some methods cannot take (:attr:`SplitInference.features`).
DAG_MODEL = "a DAG model"
THROUGHPUT_OBJECTIVE = "the throughput objective"
MEMORY_CAPS = "memory caps"
LATENCY_CAP = "a latency cap"

OBJECTIVES = ("latency", "energy", "throughput")


@dataclass(frozen=True, slots=True, eq=False)
class SplitPlan:
    """A placement of every block on a tier, and the width of every crossing tensor on every link.

    Attributes
    ----------
    tier
        ``(L,)`` tier index of each block (0 = device).
    bits
        ``(T-1, L)`` width in bits at which block ``u``'s output crosses link ``l`` (0 = native; ignored where
        the output does not cross). ``None`` means native everywhere.
    """

    tier: np.ndarray
    bits: np.ndarray | None = None

    def __post_init__(self) -> None:
        tier = int_vector("tier", self.tier, per="one tier per block", expected="integer tier indices")
        object.__setattr__(self, "tier", tier)
        if self.bits is not None:
            bits = np.asarray(self.bits)
            if bits.ndim != 2 or bits.shape[1] != tier.size:
                raise PlanError(f"`bits` has shape {bits.shape}; expected (T-1, {tier.size})")
            f = bits.astype(float)
            if not np.all(np.isfinite(f)) or np.any(f != np.round(f)) or np.any(f < 0):
                raise PlanError(f"`bits` = {bits.tolist()!r}; expected non-negative integer widths (0 = native)")
            bits = bits.astype(np.int64)
            bits.setflags(write=False)
            object.__setattr__(self, "bits", bits)

    def __eq__(self, other: object) -> bool:
        """Same tiers and widths (``bits=None`` equals all zeros)."""
        if not isinstance(other, SplitPlan) or not np.array_equal(self.tier, other.tier):
            return False
        a, b = self.bits, other.bits
        if a is None or b is None:
            return (a is None or not a.any()) and (b is None or not b.any())
        return np.array_equal(a, b)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_cuts(cls, cuts: Sequence[int], n_blocks: int, bits: Any = None) -> SplitPlan:
        """Blocks ``[0, cuts[0])`` on tier 0, ``[cuts[0], cuts[1])`` on tier 1, ... (topological order)."""
        c = np.asarray(cuts, dtype=np.int64).reshape(-1)
        if c.size and (np.any(np.diff(c) < 0) or c[0] < 0 or c[-1] > n_blocks):
            raise PlanError(f"`cuts` = {c.tolist()}; expected non-decreasing positions in [0, {n_blocks}]")
        return cls(np.searchsorted(c, np.arange(n_blocks), side="right"), bits)

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier.tolist(), "bits": None if self.bits is None else self.bits.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitPlan:
        if not isinstance(data, Mapping) or "tier" not in data:
            raise PlanError("a split plan mapping needs the key `tier` (and optionally `bits`)")
        unknown = sorted(set(data) - {"tier", "bits"})
        if unknown:
            raise PlanError(f"split plan mapping has unknown keys {unknown}; expected tier, bits")
        return cls(np.asarray(data["tier"]), None if data.get("bits") is None else np.asarray(data["bits"]))


@dataclass(frozen=True, slots=True)
class SplitMetrics:
    r"""``SplitInference.evaluate(plan)``: every quantity of the module docstring (seconds, bytes, joules).

    Attributes
    ----------
    objective
        The value of the problem's ``minimize``: latency, device energy or the pipeline period.
    latency_s, energy_j, period_s, throughput_per_s
        End-to-end latency, device energy, the period :math:`\Pi` and its inverse.
    bubble_s
        The pipeline bubble: idle time per period summed over the stages in use, :math:`\sum_s (\Pi - s)`.
    tier_time_s, compute_time_s, quant_time_s
        Per tier: all its time, its block compute, its quantize/dequantize time.
    link_time_s, link_bytes, link_used
        Per link: transfer time, bytes sent, whether anything crosses it.
    crossing_bytes
        Per link and block: the native bytes of that block's output crossing the link.
    stage_idle_s
        Per stage (tiers and links): its idle time within a period, :math:`\Pi - s`.
    memory_bytes
        Per tier: weights, buffers and the largest activation pair.
    time_source
        Where each tier's block times come from.
    """

    objective: float
    latency_s: float
    energy_j: float
    period_s: float
    throughput_per_s: float
    bubble_s: float
    tier_time_s: np.ndarray
    compute_time_s: np.ndarray
    quant_time_s: np.ndarray
    link_time_s: np.ndarray
    link_bytes: np.ndarray
    link_used: np.ndarray
    crossing_bytes: np.ndarray
    stage_idle_s: np.ndarray
    memory_bytes: np.ndarray
    time_source: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class SplitInference:
    """Split inference over an ordered path of tiers (see the module docstring for the math).

    Parameters
    ----------
    model
        The :class:`~edgeplan.profiles.model.ModelProfile` (chain or DAG).
    tiers
        2 or 3 :class:`~edgeplan.profiles.devices.DeviceProfile`, device first.
    links
        ``T - 1`` :class:`~edgeplan.profiles.links.WiredLink` (rate, latency); link ``l`` joins tiers ``l``
        and ``l + 1``. A wireless hop: :func:`~edgeplan.formulations.partition.common.wireless_link`.
    minimize
        ``"latency"``, ``"energy"`` or ``"throughput"`` (the pipeline period).
    batch_size
        Samples per request :math:`b`.
    dtype
        Compute and activation dtype (measurement key, FLOP rates, native width :math:`w_0`).
    memory_cap_bytes
        ``(T,)`` memory caps :math:`M_t` (``inf``: none); ``None``: no caps.
    bit_widths
        Transmission widths :math:`\\mathcal B` a cut tensor may use besides native (e.g. ``(2, 4, 8)``);
        empty: native only.
    min_bits
        ``(L,)`` smallest admissible width :math:`w^{\\min}_u` of each block's output (COACH's accuracy
        constraint); a value :math:`\\ge w_0` forbids quantizing that output. Scalars broadcast. Default 1.
    max_latency_s
        Optional cap :math:`T_{\\max}` on the latency.
    tx_power_w
        Tier 0's radio power while sending (energy objective); default its ``max_tx_power_w`` (or 0).
    quant_bandwidth_bytes_per_s
        ``(T,)`` :math:`\\Gamma_t` of the quantize/dequantize cost model; default each tier's memory bandwidth.
    use_measured
        Use measured block latencies where the profile has them (else FLOP-based times everywhere).
    name
        A label.
    """

    model: ModelProfile
    tiers: Sequence[DeviceProfile]
    links: Sequence[WiredLink]
    minimize: str = "latency"
    batch_size: int = 1
    dtype: str = "fp32"
    memory_cap_bytes: Any = None
    bit_widths: Sequence[int] = ()
    min_bits: Any = None
    max_latency_s: float | None = None
    tx_power_w: float | None = None
    quant_bandwidth_bytes_per_s: Any = None
    use_measured: bool = True
    name: str = "split"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        model = check_model(self.model)
        tiers = check_devices("tiers", self.tiers, minimum=2, maximum=3)
        T, L = len(tiers), model.n_blocks
        if isinstance(self.links, WiredLink) or not isinstance(self.links, Sequence):
            raise ProblemDataError(f"`links` is a {type(self.links).__name__}; expected a sequence of {T - 1} "
                                   "WiredLink")
        links = tuple(named_profile(f"links[{i}]", x, WiredLink) for i, x in enumerate(self.links))
        if len(links) != T - 1 or not all(isinstance(x, WiredLink) for x in links):
            raise ProblemDataError(f"`links` has {len(links)} entries; expected {T - 1} WiredLink (one between "
                                   "consecutive tiers)")
        one_of("minimize", self.minimize, OBJECTIVES)
        positive_int("batch_size", self.batch_size)
        one_of("dtype", self.dtype, tuple(DTYPE_BYTES))
        w0 = native_bits(self.dtype)
        widths = sorted({int(w) for w in self.bit_widths})
        if any(w < 1 or w >= w0 for w in widths) or any(isinstance(w, bool) for w in self.bit_widths):
            raise ProblemDataError(f"`bit_widths` = {list(self.bit_widths)}; expected integers in [1, {w0 - 1}] "
                                   f"(below the native {w0} bits of {self.dtype})")
        set_(self, "model", model)
        set_(self, "tiers", tiers)
        set_(self, "links", links)
        set_(self, "batch_size", int(self.batch_size))
        set_(self, "bit_widths", tuple(widths))
        set_(self, "memory_cap_bytes", per_item("memory_cap_bytes", self.memory_cap_bytes, T, default=math.inf))
        mb = per_item("min_bits", self.min_bits, L, default=1.0)
        if np.any(mb < 1) or np.any(mb != np.round(mb)):
            raise ProblemDataError(f"`min_bits` = {mb.tolist()[:8]}...; expected integers >= 1")
        set_(self, "min_bits", mb)
        as_scalar("max_latency_s", self.max_latency_s, min_value=0.0, allow_none=True)
        as_scalar("tx_power_w", self.tx_power_w, min_value=0.0, allow_none=True)
        if self.quant_bandwidth_bytes_per_s is None:
            qbw = [d.effective_bandwidth_bytes_per_s or d.memory_bandwidth_bytes_per_s for d in tiers]
        else:
            qbw = self.quant_bandwidth_bytes_per_s
        set_(self, "quant_bandwidth_bytes_per_s",
             as_array("quant_bandwidth_bytes_per_s", np.broadcast_to(np.asarray(qbw, dtype=float), (T,)),
                      shape=(T,), min_value=0.0, strict_min=True))
        if not isinstance(self.use_measured, bool):
            raise ProblemDataError(f"`use_measured` = {self.use_measured!r}; expected True or False")

    # -- sizes and derived data ---------------------------------------------------------------------------------
    @property
    def n_tiers(self) -> int:
        return len(self.tiers)

    @property
    def n_blocks(self) -> int:
        return self.model.n_blocks

    @property
    def native_bits(self) -> int:
        return native_bits(self.dtype)

    @property
    def widths(self) -> np.ndarray:
        """All widths a tensor may use: ``bit_widths`` and the native width last."""
        return np.array([*self.bit_widths, self.native_bits], dtype=np.int64)

    def data(self) -> dict[str, Any]:
        """Derived arrays (cached): per-tier block times and sources, per-request bytes, cost factors.

        Keys: ``time`` (T, L) s; ``source`` (T,); ``src``, ``dst`` (E,); ``edge_bytes`` (E,) :math:`b e'`;
        ``out_bytes`` (L,) :math:`b a`; ``input_bytes``; ``input_consumers``; ``allowed`` (L, W) bool;
        ``q_per_byte``, ``dq_per_byte`` (T, W) s per native byte; ``weights`` (L,) bytes; ``act_peak`` (L,)
        bytes; ``rate`` (T-1,) bit/s; ``latency`` (T-1,) s; ``sinks``; ``power`` (idle, dynamic, tx) W.
        """
        if self._cache:
            return self._cache
        m, b = self.model, self.batch_size
        times = [block_times(m, d, b, self.dtype, use_measured=self.use_measured) for d in self.tiers]
        scale = DTYPE_BYTES[self.dtype] / DTYPE_BYTES[m.act_dtype]
        out = m.out_bytes * scale * b
        src, dst = m.edges[:, 0], m.edges[:, 1]
        eb = np.minimum(m.edge_bytes * scale * b, out[src])
        in_bytes = np.zeros(m.n_blocks)
        np.add.at(in_bytes, dst, eb)
        in_bytes[m.input_consumers] += m.input_bytes * b
        w = self.widths
        w0 = self.native_bits
        allowed = (w[None, :] >= self.min_bits[:, None]) | (w[None, :] == w0)
        frac = w / w0
        quantized = (w < w0).astype(float)
        qbw = self.quant_bandwidth_bytes_per_s
        sinks = np.setdiff1d(np.arange(m.n_blocks), src)
        dev0 = self.tiers[0]
        tx = self.tx_power_w if self.tx_power_w is not None else (dev0.max_tx_power_w or 0.0)
        self._cache.update(
            time=np.stack([t.forward_s for t in times]), source=tuple(t.source for t in times),
            src=src, dst=dst, edge_bytes=eb, out_bytes=out, input_bytes=float(m.input_bytes * b),
            input_consumers=m.input_consumers, allowed=allowed,
            q_per_byte=quantized[None, :] * (1.0 + frac)[None, :] / qbw[:, None],
            dq_per_byte=quantized[None, :] * (frac + 1.0)[None, :] / qbw[:, None],
            weights=m.num_params * DTYPE_BYTES[self.dtype] + m.buffer_bytes, act_peak=in_bytes + out,
            rate=np.array([x.rate_bps for x in self.links]), latency=np.array([x.latency_s for x in self.links]),
            sinks=sinks,
            power=(float(dev0.power.idle_w), float(dev0.power.dynamic_power_w(dev0.clock_max_hz)), float(tx)),
        )
        return self._cache

    @property
    def block_time_s(self) -> np.ndarray:
        """``(T, L)`` time of each block on each tier (seconds per request)."""
        return self.data()["time"]

    @property
    def time_source(self) -> tuple[str, ...]:
        """Where each tier's block times come from (``measured (...)`` or ``flops (...)``)."""
        return self.data()["source"]

    def with_link_rates(self, rates_bps: Sequence[float]) -> SplitInference:
        """A copy with the links' rates replaced (e.g. one period of a bandwidth trace)."""
        r = as_array("rates_bps", np.atleast_1d(np.asarray(rates_bps, dtype=float)), shape=(self.n_tiers - 1,),
                     min_value=0.0, strict_min=True)
        links = tuple(replace(x, rate_bps=float(v)) for x, v in zip(self.links, r, strict=True))
        return replace(self, links=links)

    # -- plans ------------------------------------------------------------------------------------------------
    def _parts(self, plan: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(plan, SplitPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a SplitPlan")
        L, T = self.n_blocks, self.n_tiers
        tau = plan.tier
        if tau.shape != (L,):
            raise PlanError(f"`plan.tier` has {tau.size} entries; expected {L}, one per block of `{self.model.name}`")
        bad = (tau < 0) | (tau >= T)
        if bad.any():
            v = int(np.flatnonzero(bad)[0])
            raise PlanError(f"`plan.tier`[{v}] = {int(tau[v])} is not a tier; expected 0..{T - 1}")
        d = self.data()
        back = tau[d["src"]] > tau[d["dst"]]
        if back.any():
            e = int(np.flatnonzero(back)[0])
            u, w = int(d["src"][e]), int(d["dst"][e])
            raise PlanError(f"the placement is not ancestor-closed: block {u} ({self.model.block_names[u]!r}) on tier "
                            f"{int(tau[u])} feeds block {w} ({self.model.block_names[w]!r}) on tier {int(tau[w])}; "
                            "expected data to flow only toward later tiers")
        w0 = self.native_bits
        if plan.bits is None:
            bits = np.full((T - 1, L), w0, dtype=np.int64)
        else:
            if plan.bits.shape != (T - 1, L):
                raise PlanError(f"`plan.bits` has shape {plan.bits.shape}; expected ({T - 1}, {L})")
            bits = np.where(plan.bits == 0, w0, plan.bits)
            odd = ~np.isin(bits, self.widths)
            if odd.any():
                l, u = (int(i) for i in np.argwhere(odd)[0])
                raise PlanError(f"`plan.bits`[{l}, {u}] = {int(plan.bits[l, u])} is not a transmission width; "
                                f"expected 0 (native) or one of {self.widths.tolist()}")
        return tau, bits

    def crossing(self, tier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(T-1, L)`` native bytes of each block's output crossing each link, and ``(T-1,)`` input bytes."""
        d = self.data()
        T, L = self.n_tiers, self.n_blocks
        src, dst = d["src"], d["dst"]
        beyond = tier[None, :] > np.arange(T - 1)[:, None]                       # (T-1, L)
        cross = ~beyond[:, src] & beyond[:, dst]                                  # (T-1, E)
        per_src = np.zeros((T - 1, L))
        rows = np.repeat(np.arange(T - 1), src.size)
        np.add.at(per_src, (rows, np.tile(src, T - 1)), (cross * d["edge_bytes"]).reshape(-1))
        raw = np.minimum(per_src, d["out_bytes"][None, :])
        ic = d["input_consumers"]
        inp = d["input_bytes"] * (beyond[:, ic].any(axis=1) if ic.size else np.zeros(T - 1, dtype=bool))
        return raw, inp

    def evaluate(self, plan: SplitPlan) -> SplitMetrics:
        """Stage times, latency, energy, period, bubbles and memory of ``plan`` (module docstring)."""
        tau, bits = self._parts(plan)
        d = self.data()
        T, L = self.n_tiers, self.n_blocks
        raw, inp = self.crossing(tau)
        widx = np.searchsorted(self.widths, bits)                                   # (T-1, L)
        frac = self.widths[widx] / self.native_bits
        sent = (raw * frac).sum(axis=1) + inp
        link_t = 8.0 * sent / d["rate"]
        compute = np.array([d["time"][t, tau == t].sum() for t in range(T)])
        quant = np.zeros(T)
        quant[: T - 1] += (raw * d["q_per_byte"][np.arange(T - 1)[:, None], widx]).sum(axis=1)
        quant[1:] += (raw * d["dq_per_byte"][np.arange(1, T)[:, None], widx]).sum(axis=1)
        tier_t = compute + quant
        used = tau[None, :] > np.arange(T - 1)[:, None]
        used = used.any(axis=1)
        latency = float(tier_t.sum() + link_t.sum() + (d["latency"] * used).sum())
        idle, dyn, tx = d["power"]
        energy = float(idle * latency + dyn * tier_t[0] + tx * link_t[0])
        top = int(tau.max()) if L else 0
        stages = np.full(2 * T - 1, np.nan)
        stages[0::2][: top + 1] = tier_t[: top + 1]
        stages[1::2][:top] = link_t[:top]
        period = float(np.nanmax(stages))
        bubble = float(np.nansum(period - stages))
        mem = np.array([d["weights"][tau == t].sum() + d["act_peak"][tau == t].max(initial=0.0) for t in range(T)])
        obj = {"latency": latency, "energy": energy, "throughput": period}[self.minimize]
        return SplitMetrics(
            objective=obj, latency_s=latency, energy_j=energy, period_s=period,
            throughput_per_s=self.batch_size / period if period > 0 else math.inf, bubble_s=bubble,
            tier_time_s=tier_t, compute_time_s=compute, quant_time_s=quant, link_time_s=link_t, link_bytes=sent,
            link_used=used, crossing_bytes=raw, stage_idle_s=period - stages, memory_bytes=mem,
            time_source=d["source"])

    def objective(self, plan: SplitPlan) -> float:
        """Latency (s), device energy (J) or period (s), as ``minimize`` says."""
        return self.evaluate(plan).objective

    def check(self, plan: SplitPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Memory caps, the latency cap and the minimum admissible width of every quantized crossing tensor."""
        m = self.evaluate(plan)
        _, bits = self._parts(plan)
        out = violations_le("memory_bytes[tier {i}]", m.memory_bytes, self.memory_cap_bytes, tol)
        if self.max_latency_s is not None:
            out += violations_le(["latency_s"], [m.latency_s], [self.max_latency_s], tol)
        crossing = m.crossing_bytes > 0
        low = crossing & (bits < self.min_bits[None, :]) & (bits < self.native_bits)
        for l, u in np.argwhere(low):
            out.append(Violation(f"bits[link {l}, block {u}] (min_bits of {self.model.block_names[u]!r})",
                                 float(bits[l, u]), float(self.min_bits[u]), ">="))
        return out

    # -- reductions -------------------------------------------------------------------------------------------
    @property
    def features(self) -> frozenset[str]:
        """What methods may be unable to take (:data:`FEATURES`; a method declares those it cannot take)."""
        out = set()
        if not self.model.is_chain:
            out.add(DAG_MODEL)
        if self.minimize == "throughput":
            out.add(THROUGHPUT_OBJECTIVE)
        if np.isfinite(self.memory_cap_bytes).any():
            out.add(MEMORY_CAPS)
        if self.max_latency_s is not None:
            out.add(LATENCY_CAP)
        return frozenset(out)

    def to_milp(self, *, time_quantum_s: float | None = None) -> tuple[Any, Any]:
        """The MILP of :func:`edgeplan.formulations.partition.milp.split_milp` and its decoder ``x -> SplitPlan``."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self, time_quantum_s=time_quantum_s)

    def canonical(self, plan: SplitPlan) -> SplitPlan:
        """The same placement with widths zeroed where nothing crosses (native = 0)."""
        tau, bits = self._parts(plan)
        raw, _ = self.crossing(tau)
        b = np.where((raw > 0) & (bits < self.native_bits), bits, 0)
        return SplitPlan(tau, b if b.any() else None)

    def __repr__(self) -> str:
        return (f"SplitInference(name={self.name!r}, model={self.model.name!r}, blocks={self.n_blocks}, "
                f"tiers={[t.name for t in self.tiers]}, minimize={self.minimize!r}, widths={self.widths.tolist()})")


__all__ = ["DAG_MODEL", "LATENCY_CAP", "MEMORY_CAPS", "OBJECTIVES", "THROUGHPUT_OBJECTIVE", "SplitInference",
           "SplitMetrics", "SplitPlan"]
