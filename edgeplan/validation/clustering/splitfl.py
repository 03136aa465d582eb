r"""Split federated learning for real: a model cut into bottom and top, clusters executed as planned.

The model is the FashionMNIST CNN of :mod:`edgeplan.validation.fltask` cut after its convolutions
(:func:`split_cnn`): the bottom (two convolutions, 320 features per sample) on every bottom worker, the top (two
linear layers) on the cluster's top worker.

:func:`run_iteration` executes one training iteration of one cluster in real time, one thread per worker:
each bottom worker runs its bottom forward pass on its own mini-batch, sends the smashed data to the top over a
loopback socket paced to the planned transfer time, waits for the gradient, runs its backward pass and steps its
optimizer; the top receives the mini-batches as they arrive (a receiver thread per link), runs the top forward and
backward on each in arrival order, sends each gradient back paced (a sender thread per link, so the top does not
wait for its own transfers), and after the last one steps with the top gradient averaged over the cluster's
mini-batches. Devices run at their planned speeds: each compute step is padded by sleeping up to its planned
duration (the host must be faster than the plan; a step that overruns it is reported). Measured: every bottom's
finish, the iteration (the last finish) and the mean wait at the barrier, against
:meth:`~edgeplan.formulations.clustering.clients.ClientClustering.finish_s`.

:func:`train_rounds` trains the plan over rounds without the real-time emulation (the same arithmetic): each round
every cluster runs its :math:`\tau_c` iterations, its top worker averages its bottoms' models (ParallelSFL's
Eq. 4), and the parameter server averages the clusters' bottom and top models weighted by
:math:`N_c \tau_c` (Eq. 18); accuracy is scored after every round against the planned wall clock
:math:`\max_c (\tau_c t_c + \beta_c)`.
"""

from __future__ import annotations

import copy
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.validation.fltask import FLTask, fl_task, torch_threads
from edgeplan.validation.loopback import recv_exact, send_paced

#: Features the bottom hands to the top per sample (20 channels of 4 x 4).
SMASHED_FEATURES = 320


def split_cnn(task: FLTask) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(bottom, top)`` of the task's FashionMNIST CNN (fresh, seeded weights).

    Parameters
    ----------
    task
        The FL task whose FashionMNIST CNN is cut.
    """
    net = task.new_model()

    class Bottom(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = net.conv1, net.conv2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
            return torch.relu(torch.max_pool2d(self.conv2(x), 2)).flatten(1)

    top = torch.nn.Sequential(net.fc1, torch.nn.ReLU(), net.fc2)
    return Bottom(), top


def smashed_bytes(batch: int) -> float:
    """Bytes of one mini-batch's smashed data plus its gradient (float32)."""
    return 2.0 * 4.0 * SMASHED_FEATURES * batch


@dataclass(frozen=True, slots=True)
class IterationRun:
    """One cluster iteration executed in real time.

    Attributes
    ----------
    finish_s, predicted_finish_s
        ``(N_c,)`` each bottom's finish after the common start, measured and planned.
    iteration_s, predicted_iteration_s
        The last finish.
    barrier_wait_s, predicted_barrier_wait_s
        The bottoms' mean wait at the barrier.
    overrun_s
        The most any compute step ran past its planned duration (0: the host kept every step's pace).
    """

    finish_s: np.ndarray
    predicted_finish_s: np.ndarray
    iteration_s: float
    predicted_iteration_s: float
    barrier_wait_s: float
    predicted_barrier_wait_s: float
    overrun_s: float


def _pad(start: float, planned: float, overrun: list[float]) -> None:
    left = start + planned - time.perf_counter()
    if left > 0:
        time.sleep(left)
    else:
        overrun.append(-left)


def _pair() -> tuple[socket.socket, socket.socket]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    a = socket.create_connection(srv.getsockname())
    b, _ = srv.accept()
    srv.close()
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return a, b


def _frame(t: torch.Tensor) -> bytes:
    data = t.detach().cpu().contiguous().numpy().astype("<f4").tobytes()
    return len(data).to_bytes(8, "little") + data


def _unframe(sock: socket.socket, shape: tuple[int, ...]) -> torch.Tensor:
    n = int.from_bytes(recv_exact(sock, 8), "little")
    return torch.from_numpy(np.frombuffer(recv_exact(sock, n), dtype="<f4").copy()).reshape(shape)


def run_iteration(problem: ClientClustering, bottoms: list[int], top_worker: int, models: dict[int, torch.nn.Module],
                  top: torch.nn.Module, data: dict[int, tuple[torch.Tensor, torch.Tensor]], *, lr: float = 0.05,
                  warmup: bool = True, device: str = "cpu") -> IterationRun:
    """One real-time iteration of the cluster of ``bottoms`` and ``top_worker`` (module docstring).

    Parameters
    ----------
    problem
        The workers' planned compute times, links and smashed bytes.
    bottoms, top_worker
        The cluster.
    models, top
        Each bottom worker's bottom model, and the top model (trained in place).
    data
        Each bottom worker's mini-batch ``(x, y)``.
    lr
        SGD step size.
    warmup
        Run each model once before the clock starts (first calls allocate).
    device
        Where the models compute (the data cross the links as float32 bytes either way).
    """
    dev = torch.device(device)
    data = {i: (x.to(dev), y.to(dev)) for i, (x, y) in data.items()}
    for m in (*[models[i] for i in bottoms], top):
        m.to(dev)
    f = problem.forward_share
    planned_fwd = {i: f * float(problem.bottom_s[i]) for i in bottoms}
    planned_bwd = {i: (1 - f) * float(problem.bottom_s[i]) for i in bottoms}
    transfer = {i: 0.5 * problem.smashed_bytes / float(problem.link_bps[i]) for i in bottoms}
    mu_p = float(problem.top_s[top_worker])
    if warmup:
        with torch.no_grad():
            for i in bottoms:
                top(models[i](data[i][0]))
    links = {i: _pair() for i in bottoms}  # (bottom end, top end)
    arrivals: queue.Queue = queue.Queue()
    overrun: list[float] = []
    finish: dict[int, float] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(bottoms) + 1, timeout=120)  # a worker that fails before it breaks the wait
    t0: list[float] = []

    def paced(sock: socket.socket, payload: bytes, seconds: float) -> None:
        send_paced(sock, payload, 8.0 * len(payload) / max(seconds, 1e-9))

    def bottom(i: int) -> None:
        try:
            opt = torch.optim.SGD(models[i].parameters(), lr=lr)
            x, _ = data[i]
            start.wait()
            s = time.perf_counter()
            h = models[i](x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            _pad(s, planned_fwd[i], overrun)
            paced(links[i][0], _frame(h), transfer[i])
            g = _unframe(links[i][0], tuple(h.shape)).to(dev)
            s = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            h.backward(g)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            _pad(s, planned_bwd[i], overrun)
            finish[i] = time.perf_counter()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
            start.abort()  # the others stop waiting for this one

    def receiver(i: int) -> None:
        try:
            h = _unframe(links[i][1], (data[i][0].shape[0], SMASHED_FEATURES))
            arrivals.put((i, h))
        except BaseException as exc:
            errors.append(exc)
            arrivals.put((i, None))

    threads = [threading.Thread(target=bottom, args=(i,), daemon=True) for i in bottoms]
    threads += [threading.Thread(target=receiver, args=(i,), daemon=True) for i in bottoms]
    for th in threads:
        th.start()
    opt = torch.optim.SGD(top.parameters(), lr=lr)
    opt.zero_grad(set_to_none=True)
    senders = []
    with torch_threads(1):
        try:
            start.wait()
        except threading.BrokenBarrierError:
            raise (errors[0] if errors else RuntimeError("a split-FL worker did not start")) from None
        t0.append(time.perf_counter())
        for _ in bottoms:
            i, h = arrivals.get(timeout=120)
            if h is None:
                break
            s = time.perf_counter()
            h = h.to(dev).requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(top(h), data[i][1]) / len(bottoms)
            loss.backward()  # top gradients accumulate: their mean over the cluster's mini-batches
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            _pad(s, mu_p, overrun)
            sender = threading.Thread(target=paced, args=(links[i][1], _frame(h.grad * len(bottoms)), transfer[i]),
                                      daemon=True)
            sender.start()
            senders.append(sender)
        opt.step()
        for th in threads + senders:
            th.join(timeout=120)
    for a, b in links.values():
        a.close()
        b.close()
    if errors:
        raise errors[0]
    measured = np.array([finish[i] - t0[0] for i in bottoms])
    predicted = problem.finish_s(np.array(bottoms), top_worker)
    return IterationRun(finish_s=measured, predicted_finish_s=predicted, iteration_s=float(measured.max()),
                        predicted_iteration_s=float(predicted.max()),
                        barrier_wait_s=float((measured.max() - measured).mean()),
                        predicted_barrier_wait_s=float((predicted.max() - predicted).mean()),
                        overrun_s=max(overrun, default=0.0))


def worker_data(task: FLTask, n_workers: int, samples: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every worker's local data (the task's non-IID users)."""
    return [task.user_data(i + 1000 * seed, samples) for i in range(n_workers)]


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """Rounds of split FL trained as planned.

    Attributes
    ----------
    accuracy
        ``(R,)`` test accuracy after each round.
    wall_s
        ``(R,)`` planned wall clock at the end of each round.
    """

    accuracy: np.ndarray
    wall_s: np.ndarray


def _average(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    w = np.asarray(weights, dtype=float) / float(np.sum(weights))
    return {k: sum(float(wi) * s[k] for wi, s in zip(w, states, strict=True)) for k in states[0]}


def train_rounds(problem: ClientClustering, plan: ClusterPlan, tau: Any, round_s: float, *, task: FLTask | None = None,
                 rounds: int = 20, batch: int = 32, lr: float = 0.05, samples: int = 200, seed: int = 0) -> TrainingRun:
    """``rounds`` rounds of ``plan`` with ``tau`` iterations per cluster (module docstring); ``round_s`` is the
    planned round time.

    Parameters
    ----------
    problem, plan
        The workers and their clusters.
    tau
        ``(C,)`` local iterations per cluster and round.
    round_s
        The planned round time (the wall clock's step).
    task
        The FL task (default: the FashionMNIST CNN, Dirichlet 0.1, noise 4).
    rounds, batch, lr, samples, seed
        Rounds, mini-batch, SGD step, samples per worker and the seed.
    """
    task = task or fl_task("fmnist_cnn", alpha=0.1, noise=4.0, seed=seed)
    data = worker_data(task, problem.n_workers, samples, seed)
    bottom0, top0 = split_cnn(task)
    x_test, y_test = task.test_data(1000)
    gen = torch.Generator().manual_seed(seed)
    acc, wall = [], []
    with torch_threads(1):
        for r in range(rounds):
            b_states, t_states, weights = [], [], []
            for c in range(plan.n_clusters):
                members = [i for i in np.flatnonzero(plan.assignment == c) if i != plan.top[c]]
                bots = {i: copy.deepcopy(bottom0) for i in members}
                top = copy.deepcopy(top0)
                opts = {i: torch.optim.SGD(bots[i].parameters(), lr=lr) for i in members}
                opt_top = torch.optim.SGD(top.parameters(), lr=lr)
                for _ in range(int(tau[c])):
                    opt_top.zero_grad(set_to_none=True)
                    for i in members:
                        x, y = data[i]
                        idx = torch.randint(0, y.shape[0], (batch,), generator=gen)
                        opts[i].zero_grad(set_to_none=True)
                        h = bots[i](x[idx])
                        hd = h.detach().requires_grad_(True)
                        (torch.nn.functional.cross_entropy(top(hd), y[idx]) / len(members)).backward()
                        h.backward(hd.grad * len(members))
                        opts[i].step()
                    opt_top.step()
                b_states.append(_average([m.state_dict() for m in bots.values()], [1.0] * len(members)))
                t_states.append(top.state_dict())
                weights.append(len(members) * float(tau[c]))
            bottom0.load_state_dict(_average(b_states, weights))
            top0.load_state_dict(_average(t_states, weights))
            with torch.no_grad():
                pred = top0(bottom0(x_test)).argmax(-1)
            acc.append(float((pred == y_test).float().mean()))
            wall.append((r + 1) * round_s)
    return TrainingRun(accuracy=np.array(acc), wall_s=np.array(wall))


__all__ = ["SMASHED_FEATURES", "IterationRun", "TrainingRun", "run_iteration", "smashed_bytes", "split_cnn",
           "train_rounds", "worker_data"]
