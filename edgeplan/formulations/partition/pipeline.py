r"""Pipeline partitioning: contiguous segments of a model onto heterogeneous devices, with micro-batches.

Model
-----
Blocks :math:`v = 1..L` in topological order (a chain, or a DAG cut at prefix boundaries) are split into
stages :math:`s = 1..S`, stage :math:`s` holding blocks :math:`[j_{s-1}, j_s)` on device :math:`d_s`
(:math:`0 = j_0 < j_1 < \dots < j_S = L`). ``order="fixed"``: the stages use all :math:`K` devices in the given
order (:math:`S = K`, :math:`d_s = s`); ``order="free"``: any subset of the devices in any order, each at most
once (PipeEdge's scheduler). With micro-batches of :math:`b` samples, per micro-batch:

.. math::

    F_s = \sum_{v \in s} t^f_{v,d_s},\quad B_s = \sum_{v \in s} t^b_{v,d_s},\qquad
    X_s = \frac{8\,b\,\beta_{j_s}}{r_{d_s d_{s+1}}},\quad \Lambda_s = \lambda_{d_s d_{s+1}}

(:math:`\beta_j` the bytes per sample crossing the prefix cut after :math:`j` blocks: activations at the compute
dtype, plus the raw input at its own precision when a block beyond the cut reads it; the input is read by the
first stage and the output stays on the last). With :math:`P_s = F_s` (inference) or :math:`F_s + B_s`
(training), ``minimize="bottleneck"`` is PipeEdge's :math:`\Theta = \max(\max_s P_s, \max_s X_s)` (throughput
:math:`b/\Theta`); ``minimize="iteration"`` is the time of :math:`M` micro-batches,

.. math::

    \text{inference:}\quad & \textstyle\sum_s F_s + \sum_s (X_s + \Lambda_s) + (M-1)\max(\max F, \max X)\\
    \text{GPipe training:}\quad & \big[\textstyle\sum F + \sum(X+\Lambda) + (M-1)\max(\max F, \max X)\big]
        + \big[\textstyle\sum B + \sum(X+\Lambda) + (M-1)\max(\max B, \max X)\big]\\
    \text{1F1B training:}\quad & \textstyle\sum_s P_s + 2\sum_s(X_s + \Lambda_s) + (M-1)\max(\max P, \max X).

The first two are exact: :math:`M` identical jobs through a flow shop whose machines are the stages and the
links (full duplex) take :math:`\sum p + (M-1)\max p`, and GPipe runs all forwards, then all backwards. The
1F1B line is the usual steady-state estimate (one forward and one backward per stage per slot). Link latency
delays, it does not occupy a link. Memory of stage :math:`s` on device :math:`d`:

.. math::

    \text{mem}_s = \sum_{v \in s}(\omega n_v + q_v) + \phi_s\, b \sum_{v \in s} a_v
        \ \big[+\ b\,\big((1 + \delta_{\rm in}[s > 1])\beta_{j_{s-1}} + (1 + \delta_{\rm out})\beta_{j_s}\big)\big]
        \le M_d,

with :math:`\omega` bytes per parameter (the dtype's size for inference, ``optimizer_bytes_per_param`` for
training: weights, gradients and optimizer state) and buffers :math:`q_v`: weights only for inference; the
bracket, the stage's input and output with receive/send queues of depths :math:`(\delta_{\rm in},
\delta_{\rm out})`, is PipeEdge's rule and counts only when ``data_buffers`` is given; for
training the activations of :math:`\phi_s` in-flight micro-batches kept for backward: :math:`M` under GPipe,
:math:`\min(M, S - s + 1)` under 1F1B. The input and output of the model count as :math:`\beta_0` and
:math:`\beta_L` (the sum of the output blocks' bytes).

Choices where the papers leave a detail open: the activations kept for backward are the blocks' outputs
(:math:`a_v`, the profile's granularity); optimizer step, gradient synchronization and labels are outside the
model; backward time is the forward time times :math:`W^b/W^f` (so measured times carry over).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le
from edgeplan.formulations.partition.common import block_times, check_devices, check_model, per_item, positive_int
from edgeplan.profiles.devices import DTYPE_BYTES, DeviceProfile
from edgeplan.profiles.model import ModelProfile

#: Features of a pipeline problem that some methods cannot take (:attr:`PipelinePartition.features`).
ITERATION_FREE_ORDER = "iteration time with a free device order"
ITERATION_GPIPE_TRAINING = "iteration time of GPipe training (two max terms)"

ORDERS = ("fixed", "free")
PIPELINE_OBJECTIVES = ("bottleneck", "iteration")
MODES = ("inference", "training")
SCHEDULES = ("gpipe", "1f1b")


def rate_matrix(bandwidth_bps: Any) -> np.ndarray:
    """PipeEdge's link rule: ``rate[i, j] = min(bw[i], bw[j])`` (bit/s), ``inf`` on the diagonal.

    Parameters
    ----------
    bandwidth_bps
        ``(K,)`` each device's bandwidth (bit/s, > 0).

    Returns
    -------
    numpy.ndarray
        ``(K, K)`` link rates for :class:`PipelinePartition` ``rates_bps``.
    """
    bw = as_array("bandwidth_bps", np.atleast_1d(np.asarray(bandwidth_bps, dtype=float)), shape=(None,),
                  min_value=0.0, strict_min=True, allow_inf=True)
    r = np.minimum(bw[:, None], bw[None, :])
    np.fill_diagonal(r, np.inf)
    return r


@dataclass(frozen=True, slots=True, eq=False)
class PipelinePlan:
    """Stages as ``boundaries`` (``S + 1`` block positions from 0 to L) and the ``devices`` (``S``) running them.

    Attributes
    ----------
    boundaries
        ``S + 1`` increasing block positions, from 0 to the number of blocks: stage ``s`` runs blocks
        ``boundaries[s] .. boundaries[s + 1] - 1``.
    devices
        The device index of each stage (distinct)."""

    boundaries: np.ndarray
    devices: np.ndarray

    def __post_init__(self) -> None:
        for f in ("boundaries", "devices"):
            object.__setattr__(self, f, int_vector(f, getattr(self, f)))
        if self.boundaries.size != self.devices.size + 1:
            raise PlanError(f"`boundaries` has {self.boundaries.size} entries for {self.devices.size} devices; "
                            "expected one more boundary than stages")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PipelinePlan) and np.array_equal(self.boundaries, other.boundaries)
                and np.array_equal(self.devices, other.devices))

    __hash__ = None  # type: ignore[assignment]

    @property
    def n_stages(self) -> int:
        return int(self.devices.size)

    @property
    def sizes(self) -> np.ndarray:
        """Blocks per stage."""
        return np.diff(self.boundaries)

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], devices: Sequence[int] | None = None) -> PipelinePlan:
        """Stages of ``sizes`` blocks on ``devices`` (default ``0..S-1``)."""
        s = np.asarray(sizes, dtype=np.int64)
        return cls(np.concatenate([[0], np.cumsum(s)]), np.arange(s.size) if devices is None else devices)

    def to_dict(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries.tolist(), "devices": self.devices.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelinePlan:
        if not isinstance(data, Mapping) or {"boundaries", "devices"} - set(data):
            raise PlanError("a pipeline plan mapping needs the keys `boundaries` and `devices`")
        unknown = sorted(set(data) - {"boundaries", "devices"})
        if unknown:
            raise PlanError(f"pipeline plan mapping has unknown keys {unknown}; expected boundaries, devices")
        return cls(np.asarray(data["boundaries"]), np.asarray(data["devices"]))


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """``PipelinePartition.evaluate(plan)``; per-stage arrays have ``S`` entries, per-link ``S - 1``.

    Attributes
    ----------
    objective
        The value of the problem's ``minimize`` (bottleneck, iteration time or throughput's negative).
    bottleneck_s, iteration_s, throughput_per_s
        The slowest stage or link per micro-batch, the time of the ``M`` micro-batches of one iteration, and
        samples per second in steady state.
    forward_s, backward_s
        Each stage's compute per micro-batch (backward 0 for inference).
    link_s, link_latency_s
        Each link's transfer time per micro-batch and its latency.
    memory_bytes
        Each stage's memory (weights, training state, in-flight activations, buffers).
    bubble_s, bubble_fraction
        Idle time inside an iteration, absolute and as a share of it.
    time_source
        Where each stage's block times come from (measured on a device, or FLOPs over the device's peak).
    """

    objective: float
    bottleneck_s: float
    iteration_s: float
    throughput_per_s: float
    forward_s: np.ndarray
    backward_s: np.ndarray
    link_s: np.ndarray
    link_latency_s: np.ndarray
    memory_bytes: np.ndarray
    bubble_s: float
    bubble_fraction: float
    time_source: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class PipelinePartition:
    """Pipeline partitioning over heterogeneous devices (see the module docstring for the math).

    Parameters
    ----------
    model
        The :class:`~edgeplan.profiles.model.ModelProfile` (blocks in topological order).
    devices
        ``K`` :class:`~edgeplan.profiles.devices.DeviceProfile`.
    rates_bps
        ``(K, K)`` link rates in bit/s (diagonal ignored); :func:`rate_matrix` builds PipeEdge's rule.
    latency_s
        Link latency: a scalar or a ``(K, K)`` matrix (seconds).
    order, minimize, mode, schedule
        See the module docstring (``"fixed"``/``"free"``, ``"bottleneck"``/``"iteration"``,
        ``"inference"``/``"training"``, ``"gpipe"``/``"1f1b"``).
    micro_batch, n_micro
        Samples per micro-batch :math:`b` and micro-batches per iteration :math:`M`.
    dtype
        Compute dtype (measurement key, FLOP rates, activation and weight bytes).
    memory_cap_bytes
        ``(K,)`` memory caps (``inf``: none); ``None``: no caps.
    optimizer_bytes_per_param
        Bytes per parameter when training (16: fp32 weights, gradients and Adam's two moments).
    data_buffers
        ``None`` (default): no I/O buffers in memory; ``(receive, send)``: PipeEdge's rule with those queue
        depths :math:`(\\delta_{\\rm in}, \\delta_{\\rm out})` (input and output of the stage plus the queues).
    use_measured
        Use measured block latencies where the profile has them.
    """

    model: ModelProfile
    devices: Sequence[DeviceProfile]
    rates_bps: Any
    latency_s: Any = 0.0
    order: str = "fixed"
    minimize: str = "bottleneck"
    mode: str = "inference"
    schedule: str = "gpipe"
    micro_batch: int = 1
    n_micro: int = 1
    dtype: str = "fp32"
    memory_cap_bytes: Any = None
    optimizer_bytes_per_param: float = 16.0
    data_buffers: tuple[int, int] | None = None
    use_measured: bool = True
    name: str = "pipeline"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "model", check_model(self.model))
        devs = check_devices("devices", self.devices, minimum=1)
        K = len(devs)
        set_(self, "devices", devs)
        r = np.asarray(self.rates_bps, dtype=float) if not isinstance(self.rates_bps, str) else self.rates_bps
        rates = as_array("rates_bps", r, shape=(K, K), min_value=0.0, allow_inf=True).copy()
        np.fill_diagonal(rates, np.inf)
        off = rates[~np.eye(K, dtype=bool)]
        if (off <= 0).any():
            raise ProblemDataError("`rates_bps` has a zero rate between two devices; expected positive bit/s")
        rates.setflags(write=False)
        set_(self, "rates_bps", rates)
        lat = np.broadcast_to(np.asarray(self.latency_s, dtype=float), (K, K)) if np.ndim(self.latency_s) == 0 \
            else self.latency_s
        set_(self, "latency_s", as_array("latency_s", lat, shape=(K, K), min_value=0.0))
        one_of("order", self.order, ORDERS)
        one_of("minimize", self.minimize, PIPELINE_OBJECTIVES)
        one_of("mode", self.mode, MODES)
        one_of("schedule", self.schedule, SCHEDULES)
        set_(self, "micro_batch", positive_int("micro_batch", self.micro_batch))
        set_(self, "n_micro", positive_int("n_micro", self.n_micro))
        one_of("dtype", self.dtype, tuple(DTYPE_BYTES))
        set_(self, "memory_cap_bytes", per_item("memory_cap_bytes", self.memory_cap_bytes, K, default=math.inf))
        as_scalar("optimizer_bytes_per_param", self.optimizer_bytes_per_param, min_value=0.0)
        if self.data_buffers is not None:
            db = tuple(self.data_buffers)
            if len(db) != 2 or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in db):
                raise ProblemDataError(f"`data_buffers` = {self.data_buffers!r}; expected None or two integers >= 0 "
                                       "(receive, send)")
            set_(self, "data_buffers", (int(db[0]), int(db[1])))
        if self.order == "fixed" and K > self.model.n_blocks:
            raise ProblemDataError(f"`devices` has {K} devices for {self.model.n_blocks} blocks; a fixed order uses "
                                   "every device, expected at most one device per block")

    # -- derived data -------------------------------------------------------------------------------------------
    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def n_blocks(self) -> int:
        return self.model.n_blocks

    @property
    def training(self) -> bool:
        return self.mode == "training"

    def data(self) -> dict[str, Any]:
        """Cached arrays: ``fwd``/``bwd`` (K, L) s per micro-batch, ``source`` (K,), ``boundary`` (L+1,) bytes
        per micro-batch, ``weights`` (L,) bytes, ``acts`` (L,) bytes per micro-batch, prefix sums ``Pf``,
        ``Pb``, ``Pw``, ``Pa`` (L+1, ...)."""
        if self._cache:
            return self._cache
        m, b = self.model, self.micro_batch
        times = [block_times(m, d, b, self.dtype, use_measured=self.use_measured) for d in self.devices]
        fwd = np.stack([t.forward_s for t in times])
        bwd = np.stack([t.backward_s for t in times])
        scale = DTYPE_BYTES[self.dtype] / DTYPE_BYTES[m.act_dtype]
        # activations cross at the compute dtype; the raw input (forwarded past a cut when a later block reads it)
        # stays at its own precision
        cuts = np.arange(m.n_blocks + 1)
        raw_input = m.input_bytes * (m.input_consumers[None, :] >= cuts[:, None]).any(axis=1) \
            if m.input_consumers.size else np.zeros(cuts.size)
        boundary = (m.cut_bytes_after() - raw_input) * scale * b + raw_input * b
        outputs = m.last_consumer() == np.arange(m.n_blocks)
        boundary[-1] = float(m.out_bytes[outputs].sum() * scale * b)
        per_param = self.optimizer_bytes_per_param if self.training else DTYPE_BYTES[self.dtype]
        weights = m.num_params * per_param + m.buffer_bytes
        acts = m.out_bytes * scale * b
        self._cache.update(
            fwd=fwd, bwd=bwd, source=tuple(t.source for t in times), boundary=boundary, weights=weights, acts=acts,
            Pf=ModelProfile.prefix(fwd.T), Pb=ModelProfile.prefix(bwd.T), Pw=ModelProfile.prefix(weights),
            Pa=ModelProfile.prefix(acts))
        return self._cache

    @property
    def time_source(self) -> tuple[str, ...]:
        return self.data()["source"]

    def in_flight(self, position: Any, n_stages: Any) -> np.ndarray:
        """Micro-batches whose activations a training stage keeps: :math:`M` (GPipe), :math:`\\min(M, S-s)`
        (1F1B; ``position`` is 0-based); 0 for inference."""
        if not self.training:
            return np.zeros(np.broadcast(position, n_stages).shape)
        if self.schedule == "gpipe":
            return np.full(np.broadcast(position, n_stages).shape, float(self.n_micro))
        return np.minimum(self.n_micro, np.asarray(n_stages) - np.asarray(position)).astype(float)

    def stage_memory(self, start: Any, stop: Any, device: Any, *, position: Any, n_stages: Any) -> np.ndarray:
        """Memory of stages ``[start, stop)`` (vectorized, broadcast) at 0-based ``position`` of ``n_stages``."""
        d = self.data()
        start, stop = np.asarray(start), np.asarray(stop)
        w = d["Pw"][stop] - d["Pw"][start]
        io = 0.0
        if self.data_buffers is not None:
            din, dout = self.data_buffers
            io = (1 + din * (start > 0)) * d["boundary"][start] + (1 + dout) * d["boundary"][stop]
        act = self.in_flight(position, n_stages) * (d["Pa"][stop] - d["Pa"][start])
        return w + io + act

    def link_time(self, boundary: Any, dev_from: Any, dev_to: Any) -> np.ndarray:
        """Seconds to send a micro-batch's boundary tensors after ``boundary`` blocks (vectorized)."""
        d = self.data()
        return 8.0 * d["boundary"][np.asarray(boundary)] / self.rates_bps[np.asarray(dev_from), np.asarray(dev_to)]

    # -- plans ------------------------------------------------------------------------------------------------
    def _parts(self, plan: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(plan, PipelinePlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a PipelinePlan")
        b, dev = plan.boundaries, plan.devices
        L, K = self.n_blocks, self.n_devices
        if dev.size == 0:
            raise PlanError("`plan.devices` is empty; expected at least one stage")
        if b[0] != 0 or b[-1] != L or np.any(np.diff(b) <= 0):
            raise PlanError(f"`plan.boundaries` = {b.tolist()}; expected non-empty contiguous segments: strictly "
                            f"increasing from 0 to {L}")
        bad = (dev < 0) | (dev >= K)
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            raise PlanError(f"`plan.devices`[{s}] = {int(dev[s])} is an unknown device; expected 0..{K - 1}")
        if np.unique(dev).size != dev.size:
            raise PlanError(f"`plan.devices` = {dev.tolist()} uses a device twice; expected each at most once")
        if self.order == "fixed" and not np.array_equal(dev, np.arange(K)):
            raise PlanError(f"`plan.devices` = {dev.tolist()}; a fixed order uses all {K} devices in order "
                            f"{list(range(K))}")
        return b, dev

    def stage_times(self, plan: PipelinePlan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``F``, ``B`` (S,) and link ``X``, ``Lambda`` (S-1,) of ``plan``, seconds per micro-batch."""
        b, dev = self._parts(plan)
        d = self.data()
        F = d["Pf"][b[1:], dev] - d["Pf"][b[:-1], dev]
        B = d["Pb"][b[1:], dev] - d["Pb"][b[:-1], dev] if self.training else np.zeros(dev.size)
        X = self.link_time(b[1:-1], dev[:-1], dev[1:])
        lam = self.latency_s[dev[:-1], dev[1:]]
        return F, B, X, lam

    def times_objective(self, F: np.ndarray, B: np.ndarray, X: np.ndarray, lam: np.ndarray) -> tuple[float, float]:
        """(bottleneck, iteration time) from stage times (the module docstring's formulas)."""
        M = self.n_micro
        mx = float(X.max(initial=0.0))
        if not self.training:
            theta = max(float(F.max()), mx)
            return theta, float(F.sum() + X.sum() + lam.sum() + (M - 1) * theta)
        P = F + B
        theta = max(float(P.max()), mx)
        if self.schedule == "gpipe":
            it = (F.sum() + B.sum() + 2 * (X.sum() + lam.sum()) + (M - 1) * (max(float(F.max()), mx)
                                                                               + max(float(B.max()), mx)))
        else:
            it = P.sum() + 2 * (X.sum() + lam.sum()) + (M - 1) * theta
        return theta, float(it)

    def evaluate(self, plan: PipelinePlan) -> PipelineMetrics:
        """Stage and link times, bottleneck, iteration time, memory and bubbles of ``plan``."""
        F, B, X, lam = self.stage_times(plan)
        b, dev = plan.boundaries, plan.devices
        S = dev.size
        theta, it = self.times_objective(F, B, X, lam)
        mem = self.stage_memory(b[:-1], b[1:], dev, position=np.arange(S), n_stages=S)
        busy = self.n_micro * (F + B)
        bubble = float(np.sum(it - busy))
        return PipelineMetrics(
            objective=theta if self.minimize == "bottleneck" else it, bottleneck_s=theta, iteration_s=it,
            throughput_per_s=self.micro_batch / theta if theta > 0 else math.inf, forward_s=F, backward_s=B,
            link_s=X, link_latency_s=lam, memory_bytes=mem, bubble_s=bubble,
            bubble_fraction=bubble / (S * it) if it > 0 else 0.0,
            time_source=tuple(self.data()["source"][i] for i in dev))

    def objective(self, plan: PipelinePlan) -> float:
        """Bottleneck or iteration time (seconds), as ``minimize`` says."""
        return self.evaluate(plan).objective

    def check(self, plan: PipelinePlan, tol: float = FEAS_TOL) -> list[Violation]:
        """The memory cap of every stage's device."""
        m = self.evaluate(plan)
        dev = plan.devices
        names = [f"memory_bytes[stage {s} on device {int(d)} {self.devices[d].name!r}]" for s, d in enumerate(dev)]
        return violations_le(names, m.memory_bytes, self.memory_cap_bytes[dev], tol)

    @property
    def features(self) -> frozenset[str]:
        """What methods may be unable to take (a method declares those it cannot take)."""
        out = set()
        if self.minimize != "bottleneck" and self.order == "free":
            out.add(ITERATION_FREE_ORDER)
        if self.minimize != "bottleneck" and self.training and self.schedule == "gpipe":
            out.add(ITERATION_GPIPE_TRAINING)
        return frozenset(out)

    def to_milp(self, *, time_quantum_s: float | None = None) -> tuple[Any, Any]:
        """The MILP of :func:`edgeplan.formulations.partition.milp.pipeline_milp` and its decoder."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self, time_quantum_s=time_quantum_s)

    def device_classes(self) -> np.ndarray:
        """``(K,)`` class label of each device: devices with equal block times, caps and links share one.

        Two devices are interchangeable when they have the same forward/backward times, memory cap, latency
        and rates to every other device, and to each other the same as any two members of the class.
        """
        d = self.data()
        K = self.n_devices
        key = np.concatenate([d["fwd"], d["bwd"], self.memory_cap_bytes[:, None]], axis=1)
        _, label = np.unique(key, axis=0, return_inverse=True)
        label = label.reshape(-1)
        R, lam = self.rates_bps, self.latency_s
        # refine until every class member sees the same rate/latency to every class (repeat: splits propagate)
        for _ in range(K):
            sig = []
            for i in range(K):
                row = []
                for c in np.unique(label):
                    members = np.flatnonzero((label == c) & (np.arange(K) != i))
                    row += [tuple(np.unique(R[i, members])), tuple(np.unique(R[members, i])),
                            tuple(np.unique(lam[i, members])), tuple(np.unique(lam[members, i]))]
                sig.append((int(label[i]), tuple(row)))
            uniq = {s: n for n, s in enumerate(dict.fromkeys(sig))}
            new = np.array([uniq[s] for s in sig])
            if np.unique(new).size == np.unique(label).size:
                break
            label = new
        return label

    def __repr__(self) -> str:
        return (f"PipelinePartition(name={self.name!r}, model={self.model.name!r}, blocks={self.n_blocks}, "
                f"devices={self.n_devices}, order={self.order!r}, minimize={self.minimize!r}, mode={self.mode!r}, "
                f"M={self.n_micro})")


__all__ = ["ITERATION_FREE_ORDER", "ITERATION_GPIPE_TRAINING", "MODES", "ORDERS", "PIPELINE_OBJECTIVES", "SCHEDULES",
           "PipelineMetrics", "PipelinePartition", "PipelinePlan", "rate_matrix"]
