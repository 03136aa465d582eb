r"""Execute partition plans on real torch models and compare measured with predicted latencies.

Split inference (:func:`validate_split`)
----------------------------------------
The model is cut into the profile's blocks (:mod:`edgeplan.validation.partition.split`) and each tier's
blocks run as one sub-graph, tier after tier, in this process. Between tiers, every tensor that a later tier
reads crosses the link: block outputs are quantized to the plan's width (UAQ, codes packed to that many bits)
and everything is serialized to bytes, which cross

* ``link="socket"`` (default): a real TCP connection on ``127.0.0.1``, the sender paced to the planned rate
  (chunks released no earlier than their due time), the receiver adding the link latency; or
* ``link="delay"``: a computed delay of ``8 * bytes / rate + latency``.

Quantize/serialize time counts toward the sending tier and deserialize/dequantize toward the receiving one,
as in the model. ``repeats`` timed runs (after ``warmup``) give medians per stage and end to end. The
prediction is :meth:`SplitInference.evaluate` of the same plan, so the problem's block times must describe
this host: build it with :func:`host_split_problem` from a profile measured here (:func:`profile_on_host`).

Pipelines (:func:`validate_pipeline`)
-------------------------------------
Each stage runs in its own process; stages exchange boundary tensors with ``torch.distributed`` (gloo on
``127.0.0.1``) for ``M`` micro-batches. A link is a FIFO at the planned rate: the sender stamps each message
with its arrival time (after the link's previous message and its serialization time, plus latency) and the
receiver waits until then (CLOCK_MONOTONIC is shared by the processes of a host). The measured iteration time
(first micro-batch in to last out) is compared with :meth:`PipelinePartition.evaluate`. Everything is bounded
by ``timeout_s`` and the processes are joined (or terminated) before returning. See
:mod:`edgeplan.validation.partition.gloo`.

Reports give predicted and measured per stage and end to end, relative errors
(``measured / predicted - 1``), the share of stages within :math:`\pm 10\%`, and for quantized cuts the output
deviation from the unsplit model.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import socket
import struct
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from queue import Empty, Queue
from typing import Any

import numpy as np

from edgeplan._progress import progress_bar
from edgeplan.errors import ExecutionError, PlanError, ProblemDataError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.profiles.devices import DeviceProfile
from edgeplan.profiles.links import WiredLink
from edgeplan.profiles.model import ModelProfile
from edgeplan.registry import generator, validator
from edgeplan.validation.loopback import recv_exact, send_paced
from edgeplan.validation.partition.report import PartitionValidationReport, StageComparison

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
HOST_DEVICE = "host"
_LEN = struct.Struct("!Q")


# -- problems on this host ------------------------------------------------------------------------------------
def host_device(name: str = HOST_DEVICE) -> DeviceProfile:
    """A device profile standing for this machine (its block times come from measurements keyed ``name``)."""
    from edgeplan.profiles.loading import load_device

    return dataclasses.replace(load_device("laptop-cpu"), name=name, source="this host (times are measured)")


def profile_on_host(module: Any, example_inputs: Any, *, granularity: Any = "auto", repeats: int = 7,
                    threads: int | None = 1, zoo: dict[str, Any] | None = None) -> ModelProfile:
    """Profile ``module`` here, with its block times measured as the device :data:`HOST_DEVICE`.

    Parameters
    ----------
    module, example_inputs
        The torch model and its example inputs.
    granularity
        The profiler's block granularity (``"auto"``, ``"leaf"`` or a module depth).
    repeats
        Timed runs per block.
    threads
        Intra-op threads while timing (the executors use the same number).
    zoo
        A :func:`~edgeplan.validation.zoo.build_model` spec stored in ``meta`` (validators rebuild the model
        from it).

    Returns
    -------
    ModelProfile
    """
    import torch

    from edgeplan.profiles import profile_model

    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        prof = profile_model(module, example_inputs, granularity=granularity, device_name=HOST_DEVICE,
                             repeats=repeats, warmup=2, backward=False, progress=False)
    finally:
        torch.set_num_threads(old)
    meta = {**prof.meta, "granularity": str(granularity)} | ({"zoo": dict(zoo)} if zoo else {})
    return dataclasses.replace(prof, meta=meta)


@lru_cache(maxsize=16)
def profile_zoo(name: str, size: str = "small", batch_size: int = 1, seed: int = 0, granularity: str = "auto",
                repeats: int = 7) -> ModelProfile:
    """:func:`profile_on_host` of a zoo model (cached per process)."""
    from edgeplan.validation.zoo import build_model

    z = build_model(name, size=size, batch_size=batch_size, seed=seed)
    gran: Any = int(granularity) if granularity.isdigit() else granularity
    spec = {"name": name, "size": size, "batch_size": batch_size, "seed": seed}
    return profile_on_host(z.module, z.example_inputs, granularity=gran, repeats=repeats, zoo=spec)


def host_split_problem(model: ModelProfile, *, n_tiers: int = 2, rates_bps: Any = 100e6, latencies_s: Any = 0.0,
                       **kwargs: Any) -> SplitInference:
    """A :class:`SplitInference` whose tiers are this host (measured times) joined by the given links.

    Parameters
    ----------
    model
        A profile measured here (:func:`profile_on_host`).
    n_tiers
        2 or 3 tiers.
    rates_bps, latencies_s
        Per link (scalars broadcast).
    **kwargs
        Passed to :class:`SplitInference`.

    Returns
    -------
    SplitInference
    """
    nl = n_tiers - 1
    r = np.broadcast_to(np.asarray(rates_bps, dtype=float), (nl,))
    lat = np.broadcast_to(np.asarray(latencies_s, dtype=float), (nl,))
    links = [WiredLink(f"link{i}", float(r[i]), float(lat[i])) for i in range(nl)]
    return SplitInference(model, [host_device()] * n_tiers, links, **kwargs)


def host_pipeline_problem(model: ModelProfile, n_devices: int, *, rates_bps: Any = 1e9, **kwargs: Any,
                          ) -> PipelinePartition:
    """A :class:`PipelinePartition` over ``n_devices`` copies of this host joined by links at ``rates_bps``.

    Parameters
    ----------
    model
        A profile measured here (:func:`profile_on_host`).
    n_devices
        Copies of this host.
    rates_bps
        One rate for every link, or a ``(K, K)`` matrix.
    **kwargs
        Passed to :class:`PipelinePartition` (``micro_batch``, ``n_micro``, ``minimize`` ...).

    Returns
    -------
    PipelinePartition
    """
    from edgeplan.formulations.partition.pipeline import rate_matrix

    R = np.asarray(rates_bps, dtype=float)
    R = rate_matrix(np.full(n_devices, float(R))) if R.ndim == 0 else R
    return PipelinePartition(model, [host_device()] * n_devices, rates_bps=R, **kwargs)


@generator("partition-zoo-split", real_model=True)
def zoo_split_instance(model: str = "resnet18", size: str = "small", *, n_tiers: int = 2, rates_bps: Any = 50e6,
                       latencies_s: Any = 1e-3, minimize: str = "latency", granularity: str = "auto",
                       bit_widths: Sequence[int] = (), seed: int = 0) -> SplitInference:
    """Scenario generator: a zoo model profiled on this host, split over host tiers (``seed`` seeds weights)."""
    prof = profile_zoo(model, size, 1, int(seed), granularity)
    return host_split_problem(prof, n_tiers=n_tiers, rates_bps=rates_bps, latencies_s=latencies_s,
                              minimize=minimize, bit_widths=tuple(bit_widths), name=f"zoo-{model}-{size}")


# -- links ------------------------------------------------------------------------------------------------------
class SocketLink:
    """A loopback TCP connection paced to ``rate_bps`` with ``latency_s`` added at the receiver."""

    def __init__(self, rate_bps: float, latency_s: float, timeout_s: float) -> None:
        self.rate, self.latency, self.timeout = rate_bps, latency_s, timeout_s
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind((HOST, 0))
        srv.listen(1)
        srv.settimeout(timeout_s)
        self.tx = socket.create_connection(srv.getsockname(), timeout=timeout_s)
        self.tx.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rx, _ = srv.accept()
        self.rx.settimeout(timeout_s)
        srv.close()
        self.inbox: Queue = Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                (n,) = _LEN.unpack(recv_exact(self.rx, _LEN.size))
                if n == 0:
                    return
                data = recv_exact(self.rx, n)
                done = time.perf_counter()
                self.inbox.put((data, done))
        except (OSError, ConnectionError) as exc:
            self.inbox.put((exc, 0.0))

    def transfer(self, payload: bytes) -> tuple[bytes, float]:
        """Send ``payload`` paced to the rate; returns it as received and the seconds until it was usable."""
        start = time.perf_counter()
        send_paced(self.tx, _LEN.pack(len(payload)) + payload, self.rate)
        try:
            got, done = self.inbox.get(timeout=self.timeout)
        except Empty as exc:
            raise ExecutionError(f"the emulated link delivered nothing within {self.timeout} s") from exc
        if isinstance(got, Exception):
            raise got
        ready = done + self.latency
        while time.perf_counter() < ready:
            time.sleep(max(0.0, ready - time.perf_counter()))
        return got, time.perf_counter() - start

    def close(self) -> None:
        try:
            self.tx.sendall(_LEN.pack(0))
        except OSError:
            pass
        self.reader.join(timeout=self.timeout)
        self.tx.close()
        self.rx.close()


class DelayLink:
    """A computed delay of ``8 * bytes / rate + latency`` (no socket)."""

    def __init__(self, rate_bps: float, latency_s: float, timeout_s: float) -> None:
        self.rate, self.latency = rate_bps, latency_s

    def transfer(self, payload: bytes) -> tuple[bytes, float]:
        start = time.perf_counter()
        due = start + 8.0 * len(payload) / self.rate + self.latency
        while time.perf_counter() < due:
            time.sleep(max(0.0, due - time.perf_counter()))
        return payload, time.perf_counter() - start

    def close(self) -> None:
        pass


# -- payloads -------------------------------------------------------------------------------------------------------
_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


def encode(values: dict[str, Any], bits: dict[str, int]) -> bytes:
    """Serialize tensors with a compact binary header (name, dtype, shape, width, scale, zero point: about 30
    bytes); those with a width in ``bits`` (< native) are UAQ-quantized and bit-packed."""
    import torch

    from edgeplan.validation.partition.split import pack_codes, uaq

    out = io.BytesIO()
    for name, t in values.items():
        t = t.detach().contiguous()
        b = bits.get(name, 0) if t.is_floating_point() else 0
        dt = str(t.dtype).removeprefix("torch.")
        nb = name.encode()
        head = struct.pack(f"!H{len(nb)}sBB{t.dim()}IB", len(nb), nb, _DTYPES.index(dt), t.dim(), *t.shape, b)
        if b:
            q, scale, zero = uaq(t.float(), b)
            raw = pack_codes(q, b).tobytes()
            head += struct.pack("!dd", scale, zero)
        else:
            raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        out.write(head + struct.pack("!I", len(raw)) + raw)
    return out.getvalue()


def decode(payload: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode` (quantized tensors come back dequantized, in their original dtype)."""
    import torch

    from edgeplan.validation.partition.split import dequantize, unpack_codes

    out, pos = {}, 0
    while pos < len(payload):
        (ln,) = struct.unpack_from("!H", payload, pos)
        pos += 2
        name = payload[pos:pos + ln].decode()
        pos += ln
        code, ndim = struct.unpack_from("!BB", payload, pos)
        pos += 2
        shape = list(struct.unpack_from(f"!{ndim}I", payload, pos))
        pos += 4 * ndim
        (b,) = struct.unpack_from("!B", payload, pos)
        pos += 1
        if b:
            scale, zero = struct.unpack_from("!dd", payload, pos)
            pos += 16
        (nr,) = struct.unpack_from("!I", payload, pos)
        pos += 4
        raw = payload[pos:pos + nr]
        pos += nr
        dt = getattr(torch, _DTYPES[code])
        n = int(np.prod(shape)) if shape else 1
        if b:
            codes = unpack_codes(np.frombuffer(raw, dtype=np.uint8), b, n)
            t = dequantize(codes, scale, zero).reshape(shape).to(dt)
        else:
            np_dt = torch.empty(0, dtype=torch.int16 if dt == torch.bfloat16 else dt).numpy().dtype
            t = torch.from_numpy(np.frombuffer(raw, dtype=np_dt).copy()).reshape(shape)
            if dt == torch.bfloat16:
                t = t.view(torch.bfloat16)
        out[name] = t
    return out


# -- split inference ------------------------------------------------------------------------------------------
def _split_plan_io(problem: SplitInference, plan: SplitPlan, bg: Any) -> tuple[list[Any], list[list[str]],
                                                                             list[dict[str, int]]]:
    """Stages per tier, names crossing each link, and the width of each crossing name per link."""
    tau, bits = problem._parts(plan)
    T = problem.n_tiers
    stages = [bg.stage(np.flatnonzero(tau == t)) if (tau == t).any() else None for t in range(T)]
    tier_of = {}
    for t, st in enumerate(stages):
        if st is not None:
            for name in st.outputs:
                tier_of[name] = t
    crossing: list[list[str]] = []
    widths: list[dict[str, int]] = []
    for l in range(T - 1):
        need = []
        for t in range(l + 1, T):
            if stages[t] is not None:
                need += [n for n in stages[t].inputs if tier_of.get(n, 0) <= l]
        names = list(dict.fromkeys(need))
        crossing.append(names)
        w = {}
        for n in names:
            u = bg.producer(n)
            if u >= 0 and bits[l, u] < problem.native_bits:
                w[n] = int(bits[l, u])
        widths.append(w)
    return stages, crossing, widths


def validate_split(problem: SplitInference, plan: SplitPlan, module: Any, inputs: Any, *, link: str = "socket",
                   repeats: int = 5, warmup: int = 1, threads: int | None = 1, timeout_s: float = 60.0,
                   progress: bool | None = None) -> PartitionValidationReport:
    """Run ``plan`` on ``module`` tier by tier over emulated links; compare with ``problem.evaluate(plan)``.

    Parameters
    ----------
    problem, plan
        A split problem whose block times describe this host (:func:`host_split_problem`) and a plan for it.
    module, inputs
        The torch model the profile was measured on and its example inputs (same shapes).
    link
        ``"socket"`` (paced loopback TCP) or ``"delay"`` (computed delay).
    repeats, warmup
        Timed and untimed runs; medians are reported.
    threads
        Intra-op threads during the runs (the profile should be measured with the same number).
    timeout_s
        Bound on every wait.
    progress
        A bar over the runs (``None``: on a terminal); the phases are logged at INFO level.
    """
    import torch

    from edgeplan.validation.partition.split import block_graph

    if not isinstance(plan, SplitPlan):
        raise PlanError(f"`plan` is a {type(plan).__name__}; expected a SplitPlan")
    if link not in ("socket", "delay"):
        raise ProblemDataError(f"`link` = {link!r}; expected 'socket' or 'delay'")
    problem.check(plan)
    log.info("validate_split %s: tracing the model into %d blocks", problem.name, problem.model.n_blocks)
    bg = block_graph(module, inputs, problem.model)
    log.info("running the split %d + %d times over %s links", warmup, repeats, link)
    bar = progress_bar(warmup + repeats, "validate_split", progress, unit="run")
    stages, crossing, widths = _split_plan_io(problem, plan, bg)
    T = problem.n_tiers
    d = problem.data()
    Link = SocketLink if link == "socket" else DelayLink
    links = [Link(float(d["rate"][l]), float(d["latency"][l]), timeout_s) for l in range(T - 1)]
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    tier_t = np.zeros((repeats, T))
    link_t = np.zeros((repeats, T - 1))
    total = np.zeros(repeats)
    sizes = np.zeros(T - 1)
    out: dict[str, Any] = {}
    try:
        with torch.no_grad():
            for r in range(warmup + repeats):
                row_t, row_l = np.zeros(T), np.zeros(T - 1)
                env = dict(bg.example)
                start = time.perf_counter()
                incoming: bytes | None = None
                for t in range(T):
                    a = time.perf_counter()
                    if incoming is not None:
                        env = {**env, **decode(incoming)}
                    if stages[t] is not None:
                        env.update(stages[t].run(env))
                    payload = encode({n: env[n] for n in crossing[t]}, widths[t]) if t < T - 1 else None
                    row_t[t] = time.perf_counter() - a
                    if payload is not None:
                        sizes[t] = len(payload)
                        if crossing[t] and any(s is not None for s in stages[t + 1:]):
                            incoming, row_l[t] = links[t].transfer(payload)
                        else:
                            incoming = None
                if r >= warmup:
                    tier_t[r - warmup], link_t[r - warmup] = row_t, row_l
                    total[r - warmup] = time.perf_counter() - start
                out = {n: env[n] for n in bg.output_names() if n in env}
                bar.update(1)
    finally:
        bar.close()
        for x in links:
            x.close()
        if threads is not None:
            torch.set_num_threads(old)
    m = problem.evaluate(plan)
    ref = bg.reference()
    dev = [float((out[n].float() - ref[n].float()).abs().max()) for n in ref if n in out and out[n].is_floating_point()]
    scale = max([float(ref[n].float().abs().max()) for n in ref if ref[n].is_floating_point()] + [1e-30])
    err = max(dev) if dev else 0.0
    comps = []
    top = int(plan.tier.max())
    for t in range(top + 1):
        comps.append(StageComparison(f"tier{t} ({problem.tiers[t].name})", float(m.tier_time_s[t]),
                                     float(np.median(tier_t[:, t])), f"{int((plan.tier == t).sum())} blocks"))
        if t < top:
            pred = float(m.link_time_s[t] + d["latency"][t] * m.link_used[t])
            comps.append(StageComparison(f"link{t} ({link})", pred, float(np.median(link_t[:, t])),
                                         f"{sizes[t]:.0f} B sent, {m.link_bytes[t]:.0f} B planned"))
    return PartitionValidationReport(
        kind="split inference", stages=tuple(comps), predicted_s=float(m.latency_s),
        measured_s=float(np.median(total)), output_max_abs_error=err, output_rel_error=err / scale,
        time_source=tuple(m.time_source[: top + 1]),
        details={"link": link, "repeats": repeats, "payload_bytes": sizes.tolist(), "tier_runs_s": tier_t.tolist(),
                 "link_runs_s": link_t.tolist(), "total_runs_s": total.tolist()})


def validate_pipeline(problem: PipelinePartition, plan: PipelinePlan, model: Any, inputs: Any, *,
                      timeout_s: float = 120.0, threads: int = 1, timing: str = "auto", calibrate: int = 3,
                      iterations: int = 3) -> PartitionValidationReport:
    """Run ``plan`` as one process per stage (gloo on 127.0.0.1): ``iterations`` timed iterations of
    ``problem.n_micro`` micro-batches after a warm-up one; the iteration of the median makespan is reported.

    Parameters
    ----------
    problem, plan
        An inference :class:`PipelinePartition` whose block times describe this host, and its plan.
    model
        A torch module or a zoo spec ``{"name", "size", "batch_size", "seed"}`` (rebuilt in every process).
    inputs
        One micro-batch of example inputs (batch ``problem.micro_batch``).
    timeout_s, threads
        Bound on the run; intra-op threads per stage process.
    timing
        ``"concurrent"`` (the stages run at once, on wall-clock time), ``"dilated"`` (each stage computes
        alone and the schedule runs on a virtual clock: what separate devices would do, when the host has fewer
        cores than the stages), or ``"auto"``: dilated when stages x threads reach the host's cores. See
        :mod:`edgeplan.validation.partition.gloo`.
    calibrate
        Timed runs of its blocks that each stage process makes after every iteration (the median over the timed
        iterations' is kept): the prediction is the problem's schedule model with these stage times (under the
        run's own timing, in the run's processes, in the same seconds) and the planned links; the profile's
        prediction is in ``details["profile_predicted_s"]``. 0: predict from the profile alone.
    iterations
        Timed iterations.

    Returns
    -------
    PartitionValidationReport
        Per stage and link, predicted against measured, and the iteration.
    """
    from edgeplan.validation.partition.gloo import run_pipeline

    return run_pipeline(problem, plan, model, inputs, timeout_s=timeout_s, threads=threads, timing=timing,
                        calibrate=calibrate, iterations=iterations)


# -- the registry's entry points ------------------------------------------------------------------------------------
def _zoo_of(problem: Any) -> tuple[Any, Any]:
    from edgeplan.validation.zoo import build_model

    spec = problem.model.meta.get("zoo")
    if not spec:
        raise ProblemDataError(f"the profile `{problem.model.name}` carries no zoo spec in `meta['zoo']`; call "
                               "validate_split / validate_pipeline with the torch module")
    z = build_model(spec["name"], size=spec["size"], batch_size=int(spec["batch_size"]), seed=int(spec["seed"]))
    return z.module, z.example_inputs


@validator(SplitInference, "split execution over emulated links")
def execute_split_plan(problem: SplitInference, plan: SplitPlan, *, device: str = "cpu") -> PartitionValidationReport:
    """The split validator (``edgeplan validate``): rebuild the zoo model named in the profile,
    :func:`validate_split`."""
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; the split executor runs on 'cpu'")
    module, inputs = _zoo_of(problem)
    return validate_split(problem, plan, module, inputs)


@validator(PipelinePartition, "pipeline processes over gloo")
def execute_pipeline_plan(problem: PipelinePartition, plan: PipelinePlan, *, device: str = "cpu",
                        ) -> PartitionValidationReport:
    """The pipeline validator (``edgeplan validate``): rebuild the zoo model named in the profile,
    :func:`validate_pipeline`."""
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; the pipeline executor runs on 'cpu'")
    spec = problem.model.meta.get("zoo")
    _, inputs = _zoo_of(problem)
    return validate_pipeline(problem, plan, dict(spec), inputs)


__all__ = [
    "HOST_DEVICE",
    "DelayLink",
    "PartitionValidationReport",
    "SocketLink",
    "StageComparison",
    "decode",
    "encode",
    "execute_pipeline_plan",
    "execute_split_plan",
    "host_device",
    "host_pipeline_problem",
    "host_split_problem",
    "profile_on_host",
    "profile_zoo",
    "validate_pipeline",
    "validate_split",
    "zoo_split_instance",
]
