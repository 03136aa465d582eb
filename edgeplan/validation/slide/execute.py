r"""Run a SLIDE plan on real torch models: stream layer weights over a rate-limited loopback socket.

:func:`validate_slide` checks SLIDE's latency model against a real execution. For each validated user, a
**server process** holds the user's model as per-layer payloads (``state_dict`` slices at the planned precision:
fp32, fp16, or int8 with one fp32 scale per tensor) and sends them over a TCP socket on ``127.0.0.1``, paced to
the planned rate :math:`y_k B R_k`. The **client** (this process) starts the clock, builds the model skeleton
(uninitialised tensors, filled with NaN, so only streamed weights can produce an output) and moves the input
(SLIDE's :math:`T^0`), then for each layer waits until its weights have arrived (a receiver thread parses the
stream), copies them into the skeleton (the paper's :math:`V_1`) and runs the layer on the previous output
(:math:`\Gamma/z`). The same plan is also run **download-then-infer**. Measured end-to-end latencies are
compared with the recursion of eq. 6 fed with the payload sizes, the planned rate and this host's own timings
of setup, loading and compute (medians of ``repeats`` untimed-by-the-stream runs), and with the planned
latencies of the problem (whose device model describes the target device, not this host).

Compute timing has two modes (``compute=``):

* ``"host"``: layers run at this host's speed and clock (a plan's clock scalings describe the target device,
  whose speed differs from the host's, so they are not applied); the prediction uses this host's median setup,
  load and forward times.
* ``"target"``: each layer (and the setup) is padded to the problem's planned time on the target device,
  :math:`V_{k,l} + \Gamma_{k,l}/z_l` (and :math:`T^0`), so the measured latency is directly comparable with the
  plan's own latency; the prediction is the recursion with :math:`\max(\text{host}, \text{planned})` times.

Models are cut into the problem's layers by :func:`stream_blocks`: an ``nn.Sequential`` (its children), or the
zoo's ResNet, ViT/DeiT and MobileNetV2 (stem, each residual block or encoder layer, head). Everything stays on
the loopback interface; every wait has a timeout, and the server process is stopped at the end.
"""

from __future__ import annotations

import copy
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from queue import Empty, Queue
from typing import Any

import numpy as np

from edgeplan.errors import ExecutionError, PlanError, ProblemDataError
from edgeplan.formulations.slide.provisioning import SlidePlan, SlideProvisioning
from edgeplan.validation.layer_codec import PRECISIONS, pack_layer, unpack_layer
from edgeplan.validation.loopback import recv_exact, send_paced, spawn, stop

HOST = "127.0.0.1"
#: Interpreter switch interval during the timed runs (Python's default is 5 ms).
SWITCH_INTERVAL_S = 2e-4
_LEN = struct.Struct("!Q")


# -- cutting models into layers -----------------------------------------------------------------------------------
@cache
def _wrappers() -> tuple[type, type]:
    """``Call`` (a module returning a tensor, or the first item of a tuple) and ``Head`` (modules in sequence)."""
    import torch

    class Call(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.inner(x)
            return out[0] if isinstance(out, tuple) else out

    class Head(torch.nn.Module):
        def __init__(self, *mods: torch.nn.Module, cls_token: bool = False, flatten_after: int | None = None,
                     ) -> None:
            super().__init__()
            self.mods = torch.nn.ModuleList(mods)
            self.cls_token = cls_token
            self.flatten_after = flatten_after

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for i, m in enumerate(self.mods):
                x = m(x)
                if i == 0 and self.cls_token:
                    x = x[:, 0, :]
                if i == self.flatten_after:
                    x = torch.flatten(x, 1)
            return x

    return Call, Head


def stream_blocks(model: Any) -> list[Any]:
    """The model as a chain of blocks ``x -> block(x)``: SLIDE's "layers".

    Accepts a list/tuple of modules, an ``nn.Sequential``, or the zoo's ``ResNetForImageClassification``,
    ``ViTForImageClassification`` and ``MobileNetV2ForImageClassification`` (stem, residual blocks or encoder
    layers, head). Blocks share the model's parameters (no copy).
    """
    import torch

    Call, Head = _wrappers()
    if isinstance(model, list | tuple):
        return list(model)
    if isinstance(model, torch.nn.Sequential):
        return list(model.children())
    resnet = getattr(model, "resnet", None)
    if resnet is not None and hasattr(resnet, "embedder"):
        layers = [layer for stage in resnet.encoder.stages for layer in stage.layers]
        return [resnet.embedder, *layers, Head(resnet.pooler, model.classifier)]
    vit = getattr(model, "vit", None)
    if vit is not None and hasattr(vit, "embeddings"):
        layers = getattr(vit, "layers", None) or vit.encoder.layer
        return [Call(vit.embeddings), *(Call(layer) for layer in layers), Head(vit.layernorm, model.classifier,
                                                                               cls_token=True)]
    mnv2 = getattr(model, "mobilenet_v2", None)
    if mnv2 is not None and hasattr(mnv2, "conv_stem"):
        return [mnv2.conv_stem, *mnv2.layer, Head(mnv2.conv_1x1, mnv2.pooler, model.dropout, model.classifier,
                                                                  flatten_after=1)]
    raise ProblemDataError(f"`models` holds a {type(model).__name__}, which validate_slide cannot cut into layers; "
                           "expected an nn.Sequential, a list of modules, or a zoo ResNet/ViT/MobileNetV2")


def layer_costs(blocks: Sequence[Any], example_input: Any, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """``(bits, flops)`` per block: payload bits at ``precision`` and FLOPs per sample (torch's flop counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    bits = np.array([8.0 * len(pack_layer(b, precision)) for b in blocks])
    flops = np.zeros(len(blocks))
    x = example_input
    with torch.no_grad():
        for i, b in enumerate(blocks):
            counter = FlopCounterMode(display=False)
            with counter:
                x = b(x)
            flops[i] = counter.get_total_flops() / max(int(example_input.shape[0]), 1)
    return bits, flops


# -- the server process ---------------------------------------------------------------------------------------------
# Runs in a fresh interpreter (:func:`edgeplan.validation.loopback.spawn`): standard library only.
def _server_main() -> None:
    """Read ``(payloads, rates_bps, n_requests, timeout_s)`` (pickle) from stdin, print the port, serve."""
    import pickle
    import socket
    import struct
    import sys

    payloads, rates, n_requests, timeout_s = pickle.load(sys.stdin.buffer)
    streams = [b"".join(struct.pack("!Q", len(f)) + f for f in frames) for frames in payloads]  # framed once
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(timeout_s)
    print(srv.getsockname()[1], flush=True)
    try:
        for _ in range(n_requests):
            try:
                client, _ = srv.accept()
            except TimeoutError:
                return
            with client:
                client.settimeout(timeout_s)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                (which,) = struct.unpack("!I", recv_exact(client, 4))
                send_paced(client, streams[which], rates[which])
    finally:
        srv.close()


def _start_server(payloads: list[list[bytes]], rates: list[float], n_requests: int,
                  timeout_s: float) -> tuple[subprocess.Popen, int]:
    proc = spawn((recv_exact, send_paced), _server_main, (payloads, rates, n_requests, timeout_s))
    try:
        ready = select.select([proc.stdout], [], [], timeout_s)[0]
        line = proc.stdout.readline() if ready else b""
        if not line.strip():
            raise ExecutionError("the SLIDE server process did not report its port")
        return proc, int(line)
    except BaseException:
        stop(proc)
        raise


def _receive(sock: socket.socket, n_layers: int, t0: float, out: Queue) -> None:
    """Receiver thread: queue ``(layer, tensors, arrival_s)`` as each layer's frame completes on ``sock``."""
    try:
        with sock:
            for layer in range(n_layers):
                (size,) = _LEN.unpack(recv_exact(sock, _LEN.size))
                frame = recv_exact(sock, size)
                arrival = time.perf_counter() - t0
                out.put((layer, unpack_layer(frame), arrival))
    except (OSError, ConnectionError) as exc:
        out.put((-1, exc, 0.0))


@dataclass(frozen=True, slots=True)
class UserValidation:
    """Measured and predicted latencies of one user (seconds); per-layer arrays have the model's length."""

    user: int
    model: int
    precision: str
    rate_bps: float
    clock_scale: np.ndarray
    payload_bits: np.ndarray
    planned_bits: np.ndarray
    setup_s: float
    load_s: np.ndarray
    forward_s: np.ndarray
    predicted_arrival_s: np.ndarray
    measured_arrival_s: np.ndarray
    measured_finish_s: np.ndarray
    predicted_stream_s: float
    measured_stream_s: float
    predicted_dai_s: float
    measured_dai_s: float
    planned_stream_s: float
    planned_dai_s: float
    max_abs_output_error: float

    @property
    def stream_error(self) -> float:
        """Relative error of the streamed prediction, ``measured / predicted - 1``."""
        return self.measured_stream_s / self.predicted_stream_s - 1.0

    @property
    def dai_error(self) -> float:
        return self.measured_dai_s / self.predicted_dai_s - 1.0


@dataclass(frozen=True, slots=True)
class SlideValidationReport:
    """:func:`validate_slide`'s result: one :class:`UserValidation` per validated user."""

    users: tuple[UserValidation, ...]
    device: str

    def table(self) -> str:
        """A fixed-width table of measured vs predicted latencies (milliseconds)."""
        head = (f"{'user':>4} {'model':>5} {'prec':>4} {'rate Mb/s':>9} {'stream pred':>11} {'stream meas':>11} "
                f"{'err':>6} {'DAI pred':>9} {'DAI meas':>9} {'err':>6} {'out err':>8}")
        rows = [head]
        for u in self.users:
            rows.append(f"{u.user:>4} {u.model:>5} {u.precision:>4} {u.rate_bps / 1e6:>9.2f} "
                        f"{1e3 * u.predicted_stream_s:>11.1f} {1e3 * u.measured_stream_s:>11.1f} "
                        f"{100 * u.stream_error:>5.1f}% {1e3 * u.predicted_dai_s:>9.1f} "
                        f"{1e3 * u.measured_dai_s:>9.1f} {100 * u.dai_error:>5.1f}% {u.max_abs_output_error:>8.1e}")
        return "\n".join(rows)


# -- the client ---------------------------------------------------------------------------------------------------
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _skeleton(meta_blocks: list[Any], device: Any) -> list[Any]:
    import torch

    blocks = [copy.deepcopy(b).to_empty(device=device).eval() for b in meta_blocks]
    with torch.no_grad():
        for b in blocks:
            for t in (*b.parameters(), *b.buffers()):
                if t.is_floating_point():
                    t.fill_(float("nan"))
    return blocks


def _pad(since: float, duration: float) -> None:
    wait = since + duration - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def _run(meta_blocks: list[Any], x_host: Any, device: Any, source: Any, setup_pad: float, layer_pad: np.ndarray,
         base: float | None = None) -> tuple[Any, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One timed execution. ``source(layer)`` blocks until the layer's tensors are here and returns them.

    The setup and each layer's load + forward are padded to ``setup_pad`` and ``layer_pad`` seconds (0: none).
    Returns ``(output, setup_s, load_s, forward_s, finish_s, arrival_s)``; finish times count from ``base``
    (default: the run's start); load and forward are unpadded.
    """
    import torch

    n = len(meta_blocks)
    load_s, fwd_s, finish = np.zeros(n), np.zeros(n), np.zeros(n)
    arrival = np.zeros(n)
    t0 = time.perf_counter()
    blocks = _skeleton(meta_blocks, device)
    x = x_host.to(device)
    _sync(device)
    setup = time.perf_counter() - t0
    _pad(t0, setup_pad)
    with torch.no_grad():
        for layer in range(n):
            tensors, arrival[layer] = source(layer)
            a = time.perf_counter()
            blocks[layer].load_state_dict(tensors, strict=True)
            _sync(device)
            b = time.perf_counter()
            x = blocks[layer](x)
            _sync(device)
            c = time.perf_counter()
            _pad(a, float(layer_pad[layer]))
            load_s[layer], fwd_s[layer] = b - a, c - b
            finish[layer] = time.perf_counter() - (t0 if base is None else base)
    return x, setup, load_s, fwd_s, finish, arrival


def _predict(arrival: np.ndarray, setup: float, compute: np.ndarray) -> tuple[float, float]:
    t = setup
    for a, c in zip(arrival, compute, strict=True):
        t = max(a, t) + c
    return t, float(arrival[-1] + setup + compute.sum())


def _precision_of(problem: SlideProvisioning, i: int, blocks: list[Any], precision: Any) -> str:
    if isinstance(precision, Mapping):
        precision = precision.get(i)
    if precision is not None:
        if precision not in PRECISIONS:
            raise ProblemDataError(f"`precision` = {precision!r} for model {i}; expected one of "
                                   + ", ".join(map(repr, PRECISIONS)))
        return precision
    want = float(problem.model_bits[i])
    sizes = {p: 8.0 * sum(len(pack_layer(b, p)) for b in blocks) for p in PRECISIONS}
    best = min(sizes, key=lambda p: abs(sizes[p] / want - 1))
    if abs(sizes[best] / want - 1) > 0.05:
        raise ProblemDataError(f"model {i} has {want:.4g} bits in the problem but its payload is "
                               + ", ".join(f"{v:.4g} bits in {p}" for p, v in sizes.items())
                               + "; pass `precision` explicitly")
    return best


def validate_slide(problem: SlideProvisioning, plan: SlidePlan, models: Mapping[int, Any] | Sequence[Any],
                   inputs: Mapping[int, Any] | Any, *, users: Sequence[int] | None = None, max_users: int = 4,
                   precision: str | Mapping[int, str] | None = None, repeats: int = 3, runs: int = 1,
                   compute: str = "host", device: str = "cpu", threads: int | None = 1, timeout_s: float = 120.0,
                   ) -> SlideValidationReport:
    """Stream the planned models to their users and measure latency against SLIDE's recursion.

    Parameters
    ----------
    problem, plan
        The instance and a plan for it (e.g. ``solve(problem, "slide").plan``).
    models
        Torch models by model index (mapping or sequence; ``None`` entries are skipped); each is cut by
        :func:`stream_blocks` into exactly the problem's layers of that model.
    inputs
        The input tensor, or a mapping model index -> input tensor.
    users
        Served users to validate (default: the first ``max_users`` served users whose model is given).
    precision
        ``"fp32"``, ``"fp16"`` or ``"int8"`` (or a mapping per model); default: the precision whose payload
        matches the problem's model size within 5 %.
    repeats
        Untimed-by-the-stream runs whose medians give this host's setup, load and compute times.
    runs
        Streamed and download-then-infer runs per user; the run of median latency is reported (robust to a
        loaded host).
    compute
        ``"host"`` (this host's speed) or ``"target"`` (each step padded to the plan's time on the target
        device, clock scalings included); see the module docstring.
    device, threads
        Torch device of the client, and its intra-op thread count during the runs (``None``: unchanged).
    timeout_s
        Bound on every wait (socket, queue, process join).
    """
    import torch

    if not isinstance(plan, SlidePlan):
        raise PlanError(f"`plan` is a {type(plan).__name__}; expected a SlidePlan")
    if compute not in ("host", "target"):
        raise ProblemDataError(f"`compute` = {compute!r}; expected 'host' or 'target'")
    problem.check(plan)  # raises PlanError when the plan does not fit the problem
    lookup = dict(models) if isinstance(models, Mapping) else dict(enumerate(models))
    if users is not None:
        bad = [int(u) for u in users if not 0 <= int(u) < problem.n_users or plan.model[int(u)] < 0
               or lookup.get(int(plan.model[int(u)])) is None]
        if bad:
            raise ProblemDataError(f"`users` = {list(users)!r} has {bad}, which the plan does not serve or whose "
                                   "model is not in `models`; expected served users with a model to stream")
        chosen = [int(u) for u in users]
    else:
        chosen = [int(u) for u in np.flatnonzero(plan.served) if lookup.get(int(plan.model[u])) is not None]
        chosen = chosen[:max_users]
    if not chosen:
        raise ProblemDataError("no served user has a model in `models`; expected at least one to validate")
    dev = torch.device(device)
    jobs = []
    for u in chosen:
        i = int(plan.model[u])
        blocks = stream_blocks(lookup[i])
        if len(blocks) != problem.n_layers[i]:
            raise ProblemDataError(f"model {i} cuts into {len(blocks)} blocks; the problem gives it "
                                   f"{int(problem.n_layers[i])} layers")
        prec = _precision_of(problem, i, blocks, precision)
        x = inputs.get(i) if isinstance(inputs, Mapping) else inputs
        if x is None:
            raise ProblemDataError(f"`inputs` has no entry for model {i}")
        rate = float(plan.bandwidth_share[u] * problem.full_rate_bps[u])
        jobs.append((u, i, blocks, prec, x, rate))
    payloads = [[pack_layer(b, prec) for b in blocks] for _, _, blocks, prec, _, _ in jobs]
    metrics = problem.evaluate(plan)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    runs = max(int(runs), 1)
    proc, port = _start_server(payloads, [j[5] for j in jobs], 2 * runs * len(jobs), timeout_s)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the receiver thread gets the GIL promptly during setup
    try:
        results = [_validate_user(j, payloads[n], n, port, metrics, problem, plan, dev, repeats, runs, compute,
                                  timeout_s) for n, j in enumerate(jobs)]
    finally:
        sys.setswitchinterval(switch)
        stop(proc)
        if threads is not None:
            torch.set_num_threads(old_threads)
    return SlideValidationReport(tuple(results), str(dev))


def _validate_user(job: tuple, frames: list[bytes], which: int, port: int, metrics: Any,
                   problem: SlideProvisioning, plan: SlidePlan, dev: Any, repeats: int, runs: int, mode: str,
                   timeout_s: float) -> UserValidation:
    import torch

    u, i, blocks, prec, x, rate = job
    z = plan.clock_scale[u]
    meta = [copy.deepcopy(b).to("meta") for b in blocks]
    unpacked = [unpack_layer(f) for f in frames]
    with torch.no_grad():  # reference output, with the weights as streamed (precision losses included)
        ref_blocks = _skeleton(meta, dev)
        ref = x.to(dev)
        for b, t in zip(ref_blocks, unpacked, strict=True):
            b.load_state_dict(t, strict=True)
            ref = b(ref)
    n = len(blocks)
    profiled = [_run(meta, x, dev, lambda layer: (unpacked[layer], 0.0), 0.0, np.zeros(n))
            for _ in range(max(repeats, 1))]
    setup = float(np.median([r[1] for r in profiled]))
    load_s = np.median([r[2] for r in profiled], axis=0)
    fwd_s = np.median([r[3] for r in profiled], axis=0)
    if mode == "target":
        pd = problem.pair_data([u], [i])
        work, copy_s = pd["work_s"][0, :n], pd["copy_s"][0, :n]
        with np.errstate(divide="ignore", invalid="ignore"):
            layer_pad = copy_s + np.where(work > 0, work / z, 0.0)
        setup_pad = float(pd["setup_s"][0])
    else:
        layer_pad, setup_pad = np.zeros(n), 0.0
    n_bytes = np.array([len(f) + _LEN.size for f in frames], dtype=float)
    arrival_pred = np.cumsum(n_bytes) * 8.0 / rate
    compute = np.maximum(load_s + fwd_s, layer_pad)
    pred_stream, pred_dai = _predict(arrival_pred, max(setup, setup_pad), compute)

    def streamed(dai: bool) -> tuple[Any, float, np.ndarray, np.ndarray]:
        q: Queue = Queue()
        sock = socket.create_connection((HOST, port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()  # the request leaves now
        sock.sendall(struct.pack("!I", which))
        rx = threading.Thread(target=_receive, args=(sock, len(blocks), t0, q), daemon=True)
        rx.start()
        got: dict[int, tuple[Any, float]] = {}

        def source(layer: int) -> tuple[Any, float]:
            while layer not in got:
                try:
                    idx, tensors, arrival = q.get(timeout=timeout_s)
                except Empty as exc:
                    raise ExecutionError(f"layer {layer} of user {u} did not arrive within {timeout_s} s") from exc
                if idx < 0:
                    raise tensors
                got[idx] = (tensors, arrival)
            return got[layer]

        if dai:  # download everything first, then set up and infer
            source(len(blocks) - 1)
        out, _, _, _, finish, arrival = _run(meta, x, dev, source, setup_pad, layer_pad, base=t0)
        rx.join(timeout=timeout_s)
        return out, float(finish[-1]), finish, arrival

    def median_run(dai: bool) -> tuple[Any, float, np.ndarray, np.ndarray]:
        done = sorted((streamed(dai) for _ in range(runs)), key=lambda r: r[1])
        return done[len(done) // 2]

    out_s, meas_stream, finish_s, arrival_s = median_run(dai=False)
    out_d, meas_dai, _, _ = median_run(dai=True)
    err = max(float((out_s - ref).abs().max()), float((out_d - ref).abs().max()))
    if not np.isfinite(err):
        err = float("inf")
    return UserValidation(
        user=u, model=i, precision=prec, rate_bps=rate, clock_scale=z.copy(), payload_bits=8.0 * n_bytes,
        planned_bits=problem.layer_bits[i].copy(), setup_s=setup, load_s=load_s, forward_s=fwd_s,
        predicted_arrival_s=arrival_pred, measured_arrival_s=arrival_s, measured_finish_s=finish_s,
        predicted_stream_s=pred_stream, measured_stream_s=meas_stream, predicted_dai_s=pred_dai,
        measured_dai_s=meas_dai, planned_stream_s=float(metrics.latency_s[u]),
        planned_dai_s=float(metrics.dai_latency_s[u]), max_abs_output_error=err)


__all__ = ["PRECISIONS", "SlideValidationReport", "UserValidation", "layer_costs", "pack_layer", "stream_blocks",
           "unpack_layer", "validate_slide"]
