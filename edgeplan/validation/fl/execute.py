r"""Run a planned federated-learning round for real and compare measured with predicted latency.

:func:`validate_fl_round` takes an :class:`~edgeplan.formulations.fl.fl_round.FLRound`, a schedule and a model
(:mod:`edgeplan.validation.fltask`) and, for every selected user :math:`n` with BS :math:`m`:

1. **Local training.** :math:`E_n` real SGD epochs of the model over :math:`D_n` synthetic non-IID samples
   (the user's own, :meth:`~edgeplan.validation.fltask.FLTask.user_data`), starting from the global model.
2. **Upload.** The trained state dict, serialized to its real ``torch.save`` bytes in the upload precision,
   crosses a TCP connection on ``127.0.0.1`` paced to the user's planned rate
   :math:`r_{nm}(b_n) = b_n\log_2(1 + p_n g_{nm}/(N_0 b_n))`. All uploads of the round run concurrently
   from a separate "users" process, each starting when its user's training ended, into this process (the
   server), which timestamps each arrival, then deserializes and FedAvg-aggregates the states.

Measured latency of user :math:`n` = its (emulated) training time + serialization + the time until the
server holds its last byte; the measured round is the largest. The prediction is
:meth:`FLRound.evaluate` of the same plan: :math:`t^{\rm cmp}_n = E_n\gamma_n D_n/f_n` and :math:`Z/r_{nm}`.

Device emulation
----------------
The users' devices are not this machine. :func:`calibrate_fl_training` measures this host's seconds per
sample-epoch :math:`s_h` for the model (``threads`` intra-op threads, ``batch_size``), the "device profile
calibrated on this machine". User :math:`n`'s device needs :math:`q_n = \gamma_n/f_n` per sample-epoch, a
slowdown :math:`k_n = \lambda q_n/s_h` against this host, emulated by duty-cycle throttling (after a
training step of :math:`d` seconds the user stays busy for :math:`(k_n - 1)d` more). When some device is
faster than this host, the compute phase runs in dilated time: :math:`\lambda = \max(1, \max_n s_h/q_n)`
(the fastest device runs unthrottled) and measured training times are divided by :math:`\lambda`; uploads
always run in real time at the planned rates. The measured training time therefore tests the formulation's compute model
(linear in :math:`E_n D_n`, no per-epoch or partial-batch overhead, a stable host speed), not the devices'
clocks. :func:`host_fl_round` rebases a round's compute on the calibration (fastest user = this host, the
others slower by their clock ratio, so :math:`\lambda = 1`) and its payload on the real serialized size.
With ``emulate=False`` nothing is throttled, so every user must be this host:
``host_fl_round(problem, calibration, heterogeneous=False)``.

The least-energy round (``FLRoundEnergy`` with an ``FLEnergySchedule``) is run the same way with each
device at its planned DVFS clock :math:`f_n` and transmit power :math:`p_n`; the report then says whether
the plan's deadline holds for real. Energy itself is not measured (it is the plan's model of the devices).

Users train one after another (each is its own device; this host has too few cores to run them in
parallel), so each user's training time is measured alone; uploads overlap as in the round. The server's
deserialize-and-aggregate time is reported but not part of the prediction (the model has none).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan._progress import progress_bar
from edgeplan.errors import ExecutionError, PlanError, ProblemDataError
from edgeplan.formulations.fl.fl_energy import FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.registry import validator
from edgeplan.validation.loopback import recv_exact, send_paced, spawn, stop

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
WITHIN = 0.10
_HEAD = struct.Struct("!IdQ")  # user, t0 (CLOCK_MONOTONIC seconds), payload bytes


# -- calibration -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FLTrainingCalibration:
    """This host's training speed for one model (:func:`calibrate_fl_training`).

    ``seconds_per_sample`` is :math:`s_h` (median over ``repeats`` runs, per sample-epoch); ``spread`` is the
    runs' (max - min) / median. ``cycles_per_sample`` is :math:`s_h f_h` at the machine's nominal clock
    ``cpu_hz``, so a user with :math:`\\gamma = ` ``cycles_per_sample`` and :math:`f = ` ``cpu_hz`` is this
    host. ``payload_bits`` is the real serialized state dict in ``dtype``; ``param_bits`` the parameters
    alone (what :func:`~edgeplan.formulations.fl.common.payload_bits_of` counts).
    """

    model: str
    batch_size: int
    threads: int
    device: str
    seconds_per_sample: float
    spread: float
    cpu_hz: float
    dtype: str
    payload_bits: float
    param_bits: float

    @property
    def cycles_per_sample(self) -> float:
        return self.seconds_per_sample * self.cpu_hz


def _task(model: Any) -> Any:
    from edgeplan.validation.fltask import FLTask, fl_task

    if isinstance(model, FLTask):
        return model
    if isinstance(model, str):
        return fl_task(model)
    raise ProblemDataError(f"`model` is a {type(model).__name__}; expected a model name or an FLTask")


def calibrate_fl_training(model: Any = "fmnist_cnn", *, batch_size: int = 32, samples: Any = (50, 120, 250, 400),
                          epochs: int = 2, repeats: int = 3, threads: int | None = 1, device: str = "cpu",
                          dtype: str = "fp16") -> FLTrainingCalibration:
    """Measure :math:`s_h` (seconds per sample-epoch) of ``model`` here, after one warm-up pass.

    Each repeat trains ``epochs`` epochs on local datasets of each size in ``samples`` (users 0, 1, ...) and
    takes total time over total sample-epochs: the least-squares slope through the origin of time against
    :math:`E D`, the formulation's linear compute model, with partial last batches in their usual share.

    Parameters
    ----------
    model
        A :data:`~edgeplan.validation.fltask.FL_MODELS` name or an FL task.
    batch_size, dtype
        Local SGD minibatch; upload precision (sets the real payload size).
    samples, epochs, repeats
        Local dataset sizes trained on, epochs per run, runs.
    threads, device
        Torch threads and device.

    Returns
    -------
    FLTrainingCalibration
    """
    import torch

    from edgeplan.profiles.calibration import host_device
    from edgeplan.validation.fltask import local_train, model_bits, state_bytes, torch_threads

    task = _task(model)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ProblemDataError(f"`repeats` = {repeats!r}; expected a positive integer")
    sizes = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if sizes.size == 0 or (sizes < 1).any():
        raise ProblemDataError(f"`samples` = {samples!r}; expected positive local dataset sizes")
    data = [task.user_data(u, int(d)) for u, d in enumerate(sizes)]
    per_sample = []
    with torch_threads(threads):
        module = task.new_model().to(device)
        for i in range(repeats + 1):
            runs = [local_train(module, task, x, y, epochs=epochs, batch_size=batch_size, seed=i, device=device)
                    for x, y in data]
            if i:
                per_sample.append(sum(r.seconds for r in runs) / sum(r.samples for r in runs))
    s = float(np.median(per_sample))
    return FLTrainingCalibration(
        model=task.name, batch_size=int(batch_size), threads=int(threads or torch.get_num_threads()),
        device=str(device), seconds_per_sample=s, spread=float((max(per_sample) - min(per_sample)) / s),
        cpu_hz=host_device().clock_max_hz, dtype=dtype, payload_bits=8.0 * len(state_bytes(module, dtype)),
        param_bits=model_bits(module, dtype))


def host_fl_round(problem: FLRound, calibration: FLTrainingCalibration, *, heterogeneous: bool = True,
                  payload: str = "serialized") -> FLRound:
    """``problem`` with its compute rebased on this host (for ``emulate=False`` validation).

    Every user gets :math:`\\gamma_n = s_h f_h`; with ``heterogeneous`` the fastest user's clock becomes
    :math:`f_h` and the others keep their ratio to it (:math:`f'_n = f_h f_n/\\max f`), else all run at
    :math:`f_h`.

    Parameters
    ----------
    problem
        An FL round.
    calibration
        This host's training speed (:func:`calibrate_fl_training`).
    heterogeneous
        Keep the users' clock ratios (else every user runs at the host's speed).
    payload
        ``"serialized"`` sets the payload :math:`Z` to the real serialized state dict, ``"params"`` to the
        parameters alone, ``"keep"`` leaves it.

    Returns
    -------
    FLRound
    """
    if payload not in ("serialized", "params", "keep"):
        raise ProblemDataError(f"`payload` = {payload!r}; expected 'serialized', 'params' or 'keep'")
    f = problem.cpu_hz
    cpu = calibration.cpu_hz * (f / f.max() if heterogeneous else np.ones_like(f))
    z = {"serialized": calibration.payload_bits, "params": calibration.param_bits,
         "keep": problem.payload_bits}[payload]
    return dataclasses.replace(problem, cpu_hz=cpu, cycles_per_sample=calibration.cycles_per_sample, payload_bits=z,
                               name=f"{problem.name}-host")


# -- reports -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FLUserValidation:
    """One selected user: predicted and measured seconds (training, upload, total) and what was sent."""

    user: int
    bs: int
    samples: int
    epochs: float
    slowdown: float
    rate_bps: float
    predicted_compute_s: float
    measured_compute_s: float
    predicted_upload_s: float
    measured_upload_s: float
    planned_bits: float
    sent_bits: float
    first_loss: float
    last_loss: float

    @property
    def predicted_s(self) -> float:
        return self.predicted_compute_s + self.predicted_upload_s

    @property
    def measured_s(self) -> float:
        return self.measured_compute_s + self.measured_upload_s

    @property
    def error(self) -> float:
        """``measured / predicted - 1`` of the user's latency."""
        return self.measured_s / self.predicted_s - 1.0


@dataclass(frozen=True, slots=True)
class FLValidationReport:
    """What :func:`validate_fl_round` measured (see the module docstring)."""

    problem: str
    model: str
    users: tuple[FLUserValidation, ...]
    predicted_round_s: float
    measured_round_s: float
    dilation: float
    calibration: FLTrainingCalibration
    aggregation_s: float
    accuracy_before: float
    accuracy_after: float
    deadline_s: float | None = None

    @property
    def error(self) -> float:
        """``measured / predicted - 1`` of the round latency."""
        return self.measured_round_s / self.predicted_round_s - 1.0 if self.predicted_round_s > 0 else 0.0

    @property
    def within_10pct(self) -> float:
        """Share of users whose latency is within :math:`\\pm 10\\%` of the prediction."""
        return float(np.mean([abs(u.error) <= WITHIN for u in self.users])) if self.users else 1.0

    @property
    def payload_error(self) -> float:
        """Real upload bits over the planned :math:`Z`, minus 1."""
        return self.users[0].sent_bits / self.users[0].planned_bits - 1.0 if self.users else 0.0

    def table(self) -> str:
        head = (f"{'user':>5} {'bs':>3} {'D':>5} {'slow':>6} {'rate Mb/s':>9} {'train pred':>10} {'meas':>8} "
                f"{'upload pred':>11} {'meas':>8} {'total err':>9} {'loss':>13}")
        rows = [head] + [
            f"{u.user:>5} {u.bs:>3} {u.samples:>5} {u.slowdown:>6.2f} {u.rate_bps / 1e6:>9.3f} "
            f"{u.predicted_compute_s:>10.3f} {u.measured_compute_s:>8.3f} {u.predicted_upload_s:>11.3f} "
            f"{u.measured_upload_s:>8.3f} {u.error:>+9.1%} {u.first_loss:>6.2f}->{u.last_loss:<5.2f}"
            for u in self.users]
        return "\n".join(rows)

    def __str__(self) -> str:
        cal = self.calibration
        lines = [
            f"FL round {self.problem} with {self.model}: {len(self.users)} users, predicted "
            f"{self.predicted_round_s:.3f} s, measured {self.measured_round_s:.3f} s ({self.error:+.1%}); "
            f"{self.within_10pct:.0%} of users within +-10%",
            f"host: {cal.seconds_per_sample * 1e6:.1f} us per sample-epoch (batch {cal.batch_size}, {cal.threads} "
            f"thread(s), spread {cal.spread:.1%}); compute dilation {self.dilation:.2f}",
            f"upload: {self.users[0].sent_bits if self.users else 0:.0f} bits sent per user against "
            f"{self.users[0].planned_bits if self.users else 0:.0f} planned ({self.payload_error:+.1%}); "
            f"server deserialize + FedAvg {self.aggregation_s * 1e3:.1f} ms (not in the model); "
            f"test accuracy {self.accuracy_before:.3f} -> {self.accuracy_after:.3f}",
            self.table()]
        if self.deadline_s is not None:
            met = "met" if self.measured_round_s <= self.deadline_s else "MISSED"
            lines.insert(1, f"round deadline {self.deadline_s:.3f} s: {met} for real")
        return "\n".join(lines)


# -- the users' process: standard library only (:func:`edgeplan.validation.loopback.spawn`) ---------------------
def _uploader_main() -> None:
    """Read ``(port, payloads, rates_bps, offsets_s, timeout_s)`` (pickle) on stdin; upload each payload on its
    own connection, starting at ``t0 + offset`` and paced at its rate."""
    import pickle
    import socket
    import struct
    import sys
    import threading
    import time

    port, payloads, rates, offsets, timeout_s = pickle.load(sys.stdin.buffer)
    socks = []
    for _ in payloads:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    t0 = time.perf_counter() + 0.05
    for user, (s, data) in enumerate(zip(socks, payloads, strict=False)):
        s.sendall(struct.pack("!IdQ", user, t0, len(data)))

    def upload(user: int) -> None:
        wait = t0 + offsets[user] - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        send_paced(socks[user], payloads[user], rates[user])

    threads = [threading.Thread(target=upload, args=(u,)) for u in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in socks:
        s.close()


def _serve(sock: socket.socket, out: dict[int, tuple[bytes, float]], errors: list[BaseException]) -> None:
    try:
        with sock:
            user, t0, size = _HEAD.unpack(recv_exact(sock, _HEAD.size))
            data = recv_exact(sock, size)
            out[user] = (data, time.perf_counter() - t0)
    except BaseException as exc:  # reported by the caller
        errors.append(exc)


def upload_round(payloads: list[bytes], rates_bps: list[float], offsets_s: list[float], *,
                 timeout_s: float = 60.0) -> tuple[list[bytes], np.ndarray]:
    """Upload ``payloads`` concurrently from a separate process, each from ``offsets_s`` on (seconds after a
    common start) at ``rates_bps``; returns the bytes received here and each arrival time after the start."""
    k = len(payloads)
    rates = as_array("rates_bps", rates_bps, shape=(k,), min_value=0.0, strict_min=True)
    offsets = as_array("offsets_s", offsets_s, shape=(k,), min_value=0.0)
    as_scalar("timeout_s", timeout_s, min_value=0.0, strict_min=True)
    if k == 0:
        return [], np.zeros(0)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((HOST, 0))
    srv.listen(k)
    srv.settimeout(timeout_s)
    proc = spawn((send_paced,), _uploader_main, (srv.getsockname()[1], payloads, rates.tolist(), offsets.tolist(),
                                                 timeout_s))
    out: dict[int, tuple[bytes, float]] = {}
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []
    try:
        for i in range(k):
            try:
                conn, _ = srv.accept()
            except TimeoutError as exc:
                code = proc.poll()
                state = "is still running" if code is None else f"exited with code {code}"
                raise ExecutionError(f"only {i} of {k} uploaders connected within {timeout_s} s (the uploader "
                                     f"process {state})") from exc
            conn.settimeout(timeout_s)
            threads.append(threading.Thread(target=_serve, args=(conn, out, errors), daemon=True))
            threads[-1].start()
        for t in threads:
            t.join(timeout_s)
    finally:
        srv.close()
        stop(proc)
    if errors:
        first = errors[0]
        what = (f"an upload stalled: no bytes for {timeout_s} s" if isinstance(first, TimeoutError)
                else f"an upload broke off: {type(first).__name__}: {first}")
        raise ExecutionError(what) from first
    if len(out) != k:
        raise ExecutionError(f"{k - len(out)} of {k} uploads did not arrive within {timeout_s} s")
    return [out[u][0] for u in range(k)], np.array([out[u][1] for u in range(k)])


# -- the validator ------------------------------------------------------------------------------------------------
def _throttle(factor: float) -> Any:
    """After a step of ``d`` seconds, stay busy for ``(factor - 1) d`` more (a spin, not a sleep: a sleeping
    core wakes slower and colder, which measured 10-25% extra on throttled users here)."""
    def hook(seconds: float) -> None:
        if factor > 1.0:
            end = time.perf_counter() + (factor - 1.0) * seconds
            while time.perf_counter() < end:
                pass
    return hook


def _planned(problem: Any, plan: Any) -> tuple[np.ndarray, ...]:
    r"""Selected users, their seconds per sample-epoch :math:`q_n`, planned compute, rate, upload, and the round.

    :class:`FLRound`: clocks from the problem, rates from the planned bandwidth. ``FLRoundEnergy``: the plan's
    DVFS clock and transmit power set :math:`q_n = \gamma_n/f_n` and :math:`r = b\log_2(1 + pg/(N_0 b))`.
    """
    from edgeplan.formulations.fl.common import rate_bps
    from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy

    if isinstance(problem, FLRound) and isinstance(plan, FLSchedule):
        m = problem.evaluate(plan)
        users = np.flatnonzero(plan.selected)
        q = problem.cycles_per_sample[users] / problem.cpu_hz[users]
        return users, q, m.compute_s[users], m.rate_bps[users], m.upload_s[users], float(m.objective)
    if isinstance(problem, FLRoundEnergy) and isinstance(plan, FLEnergySchedule):
        users = np.flatnonzero(plan.selected)
        f, p, b = plan.cpu_hz[users], plan.power_w[users], plan.bandwidth_hz[users]
        rate = rate_bps(b, p * problem.gain[users, plan.bs[users]] / problem.noise_psd_w_per_hz)
        compute = problem.local_epochs[users] * problem.cycles_per_sample[users] * problem.samples[users] / f
        upload = problem.payload_bits / rate
        return (users, problem.cycles_per_sample[users] / f, compute, rate, upload,
                float(np.max(compute + upload, initial=0.0)))
    raise ProblemDataError(f"validate_fl_round got a {type(problem).__name__} and a {type(plan).__name__}; expected "
                           "an FLRound and an FLSchedule, or an FLRoundEnergy and an FLEnergySchedule")


def validate_fl_round(problem: Any, plan: Any, model: Any = "fmnist_cnn", *, batch_size: int = 32,
                      lr: float = 0.05, dtype: str = "fp16", calibration: FLTrainingCalibration | None = None,
                      emulate: bool = True, max_dilation: float = 100.0, threads: int | None = 1,
                      device: str = "cpu", test_samples: int = 500, timeout_s: float | None = None,
                      repeats: int = 1, recalibrate: bool = True, seed: int = 0,
                      progress: bool | None = None) -> FLValidationReport:
    """Run the planned round for real (see the module docstring) and report measured against predicted.

    Parameters
    ----------
    problem, plan
        A round and a feasible schedule of it: an :class:`FLRound` or an ``FLRoundEnergy`` (whose plan sets each
        device's clock and transmit power; its energy is reported as planned, not measured).
    model
        A :data:`~edgeplan.validation.fltask.FL_MODELS` name or an
        :class:`~edgeplan.validation.fltask.FLTask` (its synthetic data and seed).
    batch_size, lr, dtype
        Local SGD minibatch and step size; upload precision (``"fp32"``, ``"fp16"``, ``"bf16"``).
    calibration
        This host's training speed (default: measured now by :func:`calibrate_fl_training`).
    recalibrate
        With a given ``calibration``, measure the host's speed again just before training and throttle
        against that: a shared host drifts (here by up to 50% within minutes), and the emulated devices must
        keep their planned speed whatever this host does meanwhile.
    emulate, max_dilation
        Throttle each user to its device's speed (and dilate time when a device is faster than this host, up
        to ``max_dilation``); ``False`` runs at host speed.
    threads, device
        Torch intra-op threads and device for training.
    test_samples
        Size of the test set the aggregated model is scored on.
    timeout_s
        Bound on the upload phase (default: 10 x the predicted round + 30 s).
    repeats
        Each user's training is run this many times (from the same start, with the same seed, so with the same
        result); its median time counts, which damps a busy host's noise.
    seed
        Seeds the local minibatch order.
    progress
        A bar over the users' trainings (``None``: on a terminal); the phases are logged at INFO level to
        ``edgeplan.validation.fl.execute``.
    """
    from edgeplan.validation.fltask import fedavg, load_state_bytes, local_train, state_bytes, torch_threads

    users, per_sample, compute_s, rate, upload_s, predicted_round = _planned(problem, plan)
    broken = problem.check(plan)
    if broken:
        raise PlanError(f"the plan breaks {len(broken)} constraint(s) of {problem.name}, first {broken[0]}; "
                        "expected a feasible schedule")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ProblemDataError(f"`repeats` = {repeats!r}; expected a positive integer")
    task = _task(model)
    log.info("validate_fl_round %s: %d users, %s on %s", problem.name, users.size, task.name, device)
    if calibration is None or (recalibrate and emulate):
        log.info("calibrating this host's training speed (%s, batch %d)", task.name, batch_size)
    cal = calibration or calibrate_fl_training(task, batch_size=batch_size, threads=threads, device=device,
                                               dtype=dtype)
    if cal.model != task.name or cal.batch_size != batch_size or cal.dtype != dtype:
        raise ProblemDataError(f"`calibration` is for {cal.model} at batch {cal.batch_size} in {cal.dtype}; expected "
                               f"{task.name} at batch {batch_size} in {dtype}")
    if calibration is not None and recalibrate and emulate:
        cal = calibrate_fl_training(task, batch_size=batch_size, threads=threads, device=device, dtype=dtype,
                                    repeats=2)
    dilation = max(1.0, float(np.max(cal.seconds_per_sample / per_sample))) if emulate and users.size else 1.0
    if dilation > max_dilation:
        raise ProblemDataError(f"user {int(users[np.argmin(per_sample)])} needs {per_sample.min():.3g} s per "
                               f"sample-epoch, {dilation:.0f}x faster than this host ({cal.seconds_per_sample:.3g} s); "
                               f"expected a dilation up to `max_dilation` = {max_dilation}: raise it, or validate "
                               "host_fl_round(problem, calibration)")
    slowdown = dilation * per_sample / cal.seconds_per_sample if emulate else np.ones(users.size)
    glob = task.new_model().to(device)
    x_test, y_test = task.test_data(test_samples)
    acc0 = task.accuracy(glob, x_test.to(device), y_test.to(device))
    payloads, done, runs = [], [], []
    bar = progress_bar(int(users.size), "validate_fl_round: training", progress, unit="user")
    with torch_threads(threads), bar:
        for i, n in enumerate(users):
            x, y = task.user_data(int(n), round(problem.samples[n]))
            tries = []
            for _ in range(repeats):  # the same training each time (same start, same seed): keep the median time
                local = copy.deepcopy(glob)
                tries.append(local_train(local, task, x, y, epochs=float(problem.local_epochs[n]),
                                         batch_size=batch_size, lr=lr, seed=seed + int(n),
                                         on_step=_throttle(float(slowdown[i])), device=device))
            run = sorted(tries, key=lambda r: r.seconds)[(repeats - 1) // 2]
            t = time.perf_counter()
            payloads.append(state_bytes(local, dtype))
            ser = (time.perf_counter() - t) * float(slowdown[i])
            runs.append(run)
            done.append((run.seconds + ser) / dilation)
            log.info("user %d (%d/%d): trained in %.4g s (slowdown %.3g)", int(n), i + 1, users.size, run.seconds,
                     float(slowdown[i]))
            bar.update(1)
    log.info("replaying %d paced uploads", len(payloads))
    limit = timeout_s if timeout_s is not None else 10.0 * predicted_round + 30.0
    received, arrival = upload_round(payloads, list(rate), done, timeout_s=limit)
    t = time.perf_counter()
    states = [load_state_bytes(b) for b in received]
    if states:
        glob.load_state_dict(fedavg(states, problem.samples[users]))
    aggregation = time.perf_counter() - t
    acc1 = task.accuracy(glob, x_test.to(device), y_test.to(device))
    rows = tuple(FLUserValidation(
        user=int(n), bs=int(plan.bs[n]), samples=round(problem.samples[n]), epochs=float(problem.local_epochs[n]),
        slowdown=float(slowdown[i]), rate_bps=float(rate[i]),
        predicted_compute_s=float(compute_s[i]), measured_compute_s=float(runs[i].seconds / dilation),
        predicted_upload_s=float(upload_s[i]), measured_upload_s=float(arrival[i] - runs[i].seconds / dilation),
        planned_bits=float(problem.payload_bits), sent_bits=8.0 * len(payloads[i]), first_loss=runs[i].first_loss,
        last_loss=runs[i].last_loss) for i, n in enumerate(users))
    return FLValidationReport(problem=problem.name, model=task.name, users=rows,
                              predicted_round_s=predicted_round,
                              measured_round_s=float(arrival.max(initial=0.0)), dilation=dilation, calibration=cal,
                              aggregation_s=aggregation, accuracy_before=acc0, accuracy_after=acc1,
                              deadline_s=None if isinstance(problem, FLRound) else float(problem.deadline_s))


@validator(FLRound, "FL round: local epochs of the FMNIST CNN and paced state_dict uploads")
@validator(FLRoundEnergy, "FL round at the planned clocks and powers: local epochs and paced uploads")
def execute_fl_round_plan(problem: Any, plan: Any, *, device: str = "cpu") -> FLValidationReport:
    """The FL validator (``edgeplan validate``): :func:`validate_fl_round` with the DAGSA author code's FMNIST CNN,
    the median of 3 trainings per user."""
    return validate_fl_round(problem, plan, "fmnist_cnn", device=device, repeats=3)


__all__ = [
    "FLTrainingCalibration",
    "FLUserValidation",
    "FLValidationReport",
    "calibrate_fl_training",
    "execute_fl_round_plan",
    "host_fl_round",
    "upload_round",
    "validate_fl_round",
]
