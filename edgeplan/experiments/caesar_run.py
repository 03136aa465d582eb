r"""Caesar over many rounds, trained for real: every round planned from measured profiles, executed with the real
codecs, and checked against the plan.

Every round :math:`t` of :func:`run_caesar`:

1. a seeded share of the devices takes part; a device's staleness is the rounds since it last did (:math:`t` if
   never);
2. the round is a :class:`~edgeplan.formulations.compression.round.CompressionRound` over the participants:
   the real model's tensor sizes, the devices' links and compute, importance from their sample counts and labels
   (:func:`~edgeplan.formulations.compression.instances.caesar_importance`), the upload error profile of each
   device's *previous* update (never seen: :math:`\epsilon(\theta) = \theta`, an upper bound of any top-k
   profile), and download errors the server computes by decoding its own payload at every level against its copy
   of the device's recovery reference; the upload budget is ``budget`` :math:`\sum_i C_i`;
3. the method plans it (a plan that breaks a budget is executed as it is: a baseline is what it is);
4. each participant downloads the global model with the real low-deviation codec at its level, recovers it
   against its reference and trains ``epochs`` local epochs (:func:`~edgeplan.validation.fltask.local_train`);
5. with ``replan`` (default), each participant sends the top-k profile of its update (:data:`PROFILE_BYTES` per
   level) and the same method re-plans the upload levels on
   :meth:`~edgeplan.formulations.compression.round.CompressionRound.upload_problem` (downloads and batches
   kept, the round no longer than planned; a re-plan without a plan falls back to no round bound, then to the
   first plan's levels): a profile of an earlier update misses the round's deviation by a median 29 %
   (``docs/models/compression.md``), so only a profile of the update itself holds the budget;
6. each participant uploads its update top-k sparsified at its level; the server averages the decoded updates
   weighted by sample counts.

The recovery reference (``reference``): ``"shared"`` (default) is the model the device received minus the
sparse update it sent, which the server holds too, so the download errors it plans with are the devices'
exactly; ``"local"`` is the device's model after local training (Caesar as re-implemented), which differs from
it by the part of the update that was never sent, so the server's copy is only a proxy.

Recorded per round (:class:`CaesarRound`): test accuracy, the bytes on the wire (payloads and profiles) against
the executed plan's and the first plan's, the measured deviations against the executed plan's and the earlier
profiles' forecast. :class:`CaesarRun` reports the traffic to a target accuracy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from edgeplan._checks import one_of
from edgeplan.formulations.compression.instances import caesar_importance
from edgeplan.formulations.compression.round import CompressionChoice, CompressionRound
from edgeplan.formulations.compression.wire import topk_error_profile
from edgeplan.solvers.api import solve
from edgeplan.validation.compression.codecs import decode_state, deviation, encode_state
from edgeplan.validation.fltask import FLTask, fl_task, local_train, torch_threads

MB = 1e6


@dataclass(frozen=True, slots=True)
class CaesarRound:
    """One executed round.

    Attributes
    ----------
    round, accuracy
        The round and the test accuracy after it.
    devices
        The participants.
    bytes, predicted_bytes, planned_bytes
        Bytes on the wire (download, upload and profiles, every participant), the executed plan's, and the plan's
        made before training.
    upload_deviation, predicted_upload, forecast_upload
        ``(K,)`` measured :math:`\\|g - \\hat g\\|^2 / \\|g\\|^2`, the executed plan's profile value, and the
        earlier profile's value at the executed level (what a plan made before training expects).
    download_deviation, predicted_download
        ``(K,)`` measured :math:`\\|w - \\hat w\\|^2 / \\|w\\|^2` and the plan's prediction.
    importance
        ``(K,)`` :math:`C_i` (the upload budget weighs the deviations with them).
    plan
        The executed plan.
    """

    round: int
    accuracy: float
    devices: np.ndarray
    bytes: float
    predicted_bytes: float
    planned_bytes: float
    upload_deviation: np.ndarray
    predicted_upload: np.ndarray
    forecast_upload: np.ndarray
    download_deviation: np.ndarray
    predicted_download: np.ndarray
    importance: np.ndarray
    plan: CompressionChoice

    @property
    def weighted_upload(self) -> tuple[float, float, float]:
        """Measured, predicted and forecast :math:`\\sum_i C_i \\epsilon^u_i`, the quantity the upload budget
        caps."""
        return (float(self.importance @ self.upload_deviation), float(self.importance @ self.predicted_upload),
                float(self.importance @ self.forecast_upload))


@dataclass(slots=True)
class CaesarRun:
    """Every round of one method.

    Attributes
    ----------
    method
        The planning method.
    rounds
        One :class:`CaesarRound` per round.
    """

    method: str
    rounds: list[CaesarRound] = field(default_factory=list)

    @property
    def accuracy(self) -> np.ndarray:
        return np.array([r.accuracy for r in self.rounds])

    @property
    def traffic(self) -> np.ndarray:
        """Cumulative bytes after each round."""
        return np.cumsum([r.bytes for r in self.rounds])

    def traffic_to(self, target: float) -> float | None:
        """Bytes until the accuracy first reaches ``target`` (None: never)."""
        hit = np.flatnonzero(self.accuracy >= target)
        return float(self.traffic[hit[0]]) if hit.size else None


def state_profile(update: dict[str, torch.Tensor], levels: np.ndarray) -> np.ndarray:
    """The per-tensor top-k error profile of a whole update at ``levels`` (each tensor's share weighted by its
    energy: the codec compresses tensor by tensor).

    Parameters
    ----------
    update
        A model update (every floating tensor counts).
    levels
        The ratios.
    """
    energy, dropped = 0.0, np.zeros(levels.size)
    for v in update.values():
        if v.is_floating_point():
            e = float((v.float() ** 2).sum())
            dropped += e * topk_error_profile(v.float().numpy(), levels)
            energy += e
    return dropped / energy if energy > 0 else np.zeros(levels.size)


@dataclass(slots=True)
class _Devices:
    """The devices' fixed traits and their state across rounds."""

    samples: np.ndarray
    importance: np.ndarray
    down_bps: np.ndarray
    up_bps: np.ndarray
    per_sample_s: np.ndarray
    last_seen: np.ndarray
    local: list[dict[str, torch.Tensor]]
    proxy: list[dict[str, torch.Tensor]]
    profile: list[np.ndarray | None]

    def staleness(self, t: int) -> np.ndarray:
        return np.where(self.last_seen < 0, t, t - self.last_seen).astype(float)


def predicted_download(glob: dict[str, torch.Tensor], proxy: dict[str, torch.Tensor], levels: np.ndarray) -> np.ndarray:
    """The server's prediction of a device's download error at every level: its payload decoded against its
    proxy of the device's copy.

    Parameters
    ----------
    glob
        The global model the server sends.
    proxy
        The server's proxy of the device's copy.
    levels
        The ratios.
    """
    return np.array([deviation(glob, decode_state(encode_state(glob, float(th), "download"), proxy, float(th),
                                                  "download")) for th in levels])


#: The devices' links are the ``caesar-round`` generator's (MB/s) divided by this: the CNN's 87 KB stand in for a
#: model a hundred times larger, so that communication weighs in the round as it does for the papers' models.
LINK_SCALE = 100.0


def _devices(task: FLTask, n: int, rng: np.random.Generator, init: dict[str, torch.Tensor]) -> _Devices:
    samples = np.maximum(40, rng.lognormal(np.log(150), 0.5, n)).astype(int)
    labels = np.array([np.bincount(task.user_data(i, int(samples[i]))[1].numpy(), minlength=task.n_classes)
                       for i in range(n)]) + 1
    return _Devices(samples=samples, importance=caesar_importance(samples, labels),
                    down_bps=rng.uniform(2, 20, n) * MB / LINK_SCALE,
                    up_bps=rng.uniform(0.5, 5, n) * MB / LINK_SCALE,
                    per_sample_s=rng.uniform(0.002, 0.02, n), last_seen=np.full(n, -1),
                    local=[init] * n, proxy=[init] * n, profile=[None] * n)


#: Bytes a participant sends for its update's top-k profile with ``replan``: one float32 per level.
PROFILE_BYTES = 4


def _planned(problem: CompressionRound, method: str, options: dict | None, seed: int) -> CompressionChoice | None:
    """``method``'s plan of ``problem``, or the plan it made that breaks a budget (a baseline is executed as it is);
    None without either."""
    res = solve(problem, method, options=options or {}, seed=seed, time_limit=30)
    return res.plan if res.has_plan else res.stats.get("rejected_plan")


def _replanned_uploads(problem: CompressionRound, plan: CompressionChoice, measured: np.ndarray, method: str,
                       options: dict | None, seed: int) -> np.ndarray:
    """Upload levels re-planned by ``method`` on the measured profiles (module docstring, step 5)."""
    uploads = problem.upload_problem(plan, measured)
    again = _planned(uploads, method, options, seed)
    if again is None:
        again = _planned(replace(uploads, round_bound_s=float("inf")), method, options, seed)
    return plan.up if again is None else again.up


def run_caesar(method: str = "caesar", *, n_devices: int = 20, participation: float = 0.5, rounds: int = 30,
               levels: tuple = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95), budget: float = 0.1, download_cap: float = 0.05,
               epochs: float = 1.0, batch: int = 16, lr: float = 0.05, task: FLTask | None = None, seed: int = 0,
               options: dict | None = None, replan: bool = True, reference: str = "shared") -> CaesarRun:
    """``rounds`` rounds of Caesar-style FL planned by ``method`` (module docstring).

    Parameters
    ----------
    method
        A method for :class:`~edgeplan.formulations.compression.round.CompressionRound` (``caesar``,
        ``compression-milp``, ``uniform-compression``, ``no-compression`` ...).
    n_devices, participation, rounds
        Devices, the share that takes part each round, rounds.
    levels, budget, download_cap
        Ratio levels; the upload budget as a share of the participants' :math:`\\sum C_i`; the download cap.
    epochs, batch, lr
        Local training (every device's batch is ``batch``; the plan's batch sizes only time the round).
    task
        The FL task (default: the FashionMNIST CNN on synthetic non-IID data, Dirichlet 0.3, noise 4: about 0.74
        test accuracy after 10 uncompressed rounds and 0.97 after 30).
    seed
        Seeds the devices, the participation and the training.
    options
        The method's options.
    replan
        Re-plan the upload levels on the updates' measured profiles (step 5); False: upload as first planned.
    reference
        The download's recovery reference: ``"shared"`` or ``"local"`` (module docstring).
    """
    one_of("reference", reference, ("shared", "local"))
    task = task or fl_task("fmnist_cnn", alpha=0.3, noise=4.0, seed=seed)
    rng = np.random.default_rng(seed)
    model = task.new_model()
    glob = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dev = _devices(task, n_devices, rng, {k: v.clone() for k, v in glob.items()})
    lv = np.asarray(levels, dtype=float)
    sizes = [v.numel() for v in glob.values() if v.is_floating_point()]
    x_test, y_test = task.test_data(1000)
    run = CaesarRun(method)
    k = max(1, round(participation * n_devices))
    with torch_threads(1):
        for t in range(rounds):
            who = np.sort(rng.choice(n_devices, k, replace=False))
            up_err = np.array([dev.profile[i] if dev.profile[i] is not None else lv for i in who])
            problem = CompressionRound(
                sizes=sizes, levels=lv, download_bps=dev.down_bps[who], upload_bps=dev.up_bps[who],
                per_sample_s=dev.per_sample_s[who], importance=dev.importance[who], upload_error=up_err,
                download_error=np.array([predicted_download(glob, dev.proxy[i], lv) for i in who]),
                upload_budget=budget * float(dev.importance[who].sum()), download_cap=download_cap, min_batch=8,
                max_batch=64, staleness=dev.staleness(t)[who], round_index=max(t, 1), name=f"caesar-round-{t}")
            plan = _planned(problem, method, options, seed)
            if plan is None:  # nothing planned: every participant uncompressed
                plan = CompressionChoice(np.zeros(k, int), np.zeros(k, int), np.full(k, 64))
            total, dd, got, deltas = 0.0, [], [], []
            for a, i in enumerate(who):  # download, recover, train
                th_d = float(lv[plan.down[a]])
                pay = encode_state(glob, th_d, "download")
                got.append(decode_state(pay, dev.local[i], th_d, "download"))
                total += sum(len(p) for p in pay.values())
                dd.append(deviation(glob, got[a]))
                net = copy.deepcopy(model)
                net.load_state_dict(got[a])
                x, y = task.user_data(int(i), int(dev.samples[i]))
                local_train(net, task, x, y, epochs=epochs, batch_size=batch, lr=lr, seed=t * 1009 + int(i))
                deltas.append({kk: got[a][kk] - v.detach() for kk, v in net.state_dict().items()})
            measured = np.array([state_profile(d, lv) for d in deltas])
            executed, extra = plan, 0.0
            if replan:
                executed = CompressionChoice(plan.down, _replanned_uploads(problem, plan, measured, method, options,
                                                                           seed), plan.batch)
                extra = PROFILE_BYTES * lv.size * k
            m = (replace(problem, upload_error=measured) if replan else problem).evaluate(executed)
            upd, weights = [], []
            for a, i in enumerate(who):  # upload
                th_u = float(lv[executed.up[a]])
                pay = encode_state(deltas[a], th_u, "upload")
                sent = decode_state(pay, deltas[a], th_u, "upload")
                total += sum(len(p) for p in pay.values())
                upd.append(deviation(deltas[a], sent))
                dev.profile[i], dev.last_seen[i] = measured[a], t
                if reference == "shared":  # the server holds the same reference
                    dev.local[i] = dev.proxy[i] = {kk: got[a][kk] - sent[kk] for kk in glob}
                else:
                    dev.local[i] = {kk: got[a][kk] - deltas[a][kk] for kk in glob}
                    dev.proxy[i] = {kk: glob[kk] - sent[kk] for kk in glob}
                weights.append((float(dev.samples[i]), sent))
            wsum = sum(w for w, _ in weights)
            glob = {kk: v - sum(w * s[kk] for w, s in weights) / wsum if v.is_floating_point() else v
                    for kk, v in glob.items()}
            model.load_state_dict(glob)
            rows = np.arange(k)
            run.rounds.append(CaesarRound(
                round=t, accuracy=task.accuracy(model, x_test, y_test), devices=who, bytes=total + extra,
                predicted_bytes=m.traffic_bytes + extra, planned_bytes=problem.evaluate(plan).traffic_bytes + extra,
                upload_deviation=np.array(upd), predicted_upload=(measured if replan else up_err)[rows, executed.up],
                forecast_upload=up_err[rows, executed.up], download_deviation=np.array(dd),
                predicted_download=m.download_error, importance=dev.importance[who], plan=executed))
    return run


__all__ = ["LINK_SCALE", "PROFILE_BYTES", "CaesarRound", "CaesarRun", "predicted_download", "run_caesar",
           "state_profile"]
