r"""FL plans executed by Flower's own server loop, with real clients that train (:func:`run_flower`).

The rounds of a plan (``simulate_fl(..., keep_flower=True).flower``, or the ``flower`` export's files) drive
:class:`~edgeplan.io.flower_strategy.PlannedFedAvg` inside Flower's ``Server``: ``Server.fit`` calls
``configure_fit``, sends every planned client its ``FitIns``, collects the ``FitRes`` and aggregates them with
FedAvg, round after round, exactly as in a Flower deployment. The clients are Flower ``NumPyClient``\ s that
train the task's model (the FMNIST CNN by default) on their own synthetic non-IID data for the planned number
of local epochs; each is reached through an in-process ``ClientProxy`` (Flower's Ray-based simulation engine is
not used: it needs Ray, a much larger install whose processes bind beyond loopback). A server-side
``evaluate_fn`` scores the global model on the task's test set after every round.

:class:`FlowerRun` holds Flower's ``History``, what each round executed (from the strategy), what each client
was asked to do (from the clients), and the accuracy per round; ``tests/fl/test_flower.py`` checks that the
rounds Flower executed are the planned ones.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError


@dataclass
class FlowerRun:
    """A plan run through Flower (see the module docstring)."""

    history: Any
    executed: dict[int, list[dict[str, Any]]]
    asked: dict[int, dict[str, dict[str, Any]]]
    accuracy: list[float] = field(default_factory=list)

    def clients(self, server_round: int) -> list[str]:
        """The clients Flower sent work to in ``server_round``, sorted."""
        return sorted(e["cid"] for e in self.executed.get(server_round, []))


def _client_classes() -> tuple[type, type]:
    """Flower's client and proxy bases, with our subclasses (defined here so that flwr loads on first use)."""
    import torch
    from flwr.client import NumPyClient
    from flwr.common import Code, GetParametersRes
    from flwr.common import Status as FlowerStatus
    from flwr.server.client_proxy import ClientProxy

    from edgeplan.validation.fltask import local_train

    class TaskClient(NumPyClient):
        """A device: trains its copy of the model on its own data for the epochs the server asks for."""

        def __init__(self, cid: str, task: Any, x: Any, y: Any, asked: dict, lock: threading.Lock, opts: dict):
            self.cid, self.task, self.x, self.y, self.asked, self.lock, self.opts = cid, task, x, y, asked, lock, opts
            self.model = task.new_model()

        def get_parameters(self, config: Mapping[str, Any]) -> list[np.ndarray]:
            return [v.detach().cpu().numpy() for v in self.model.state_dict().values()]

        def fit(self, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict]:
            state = dict(zip(self.model.state_dict(), (torch.from_numpy(np.array(p)) for p in parameters),
                             strict=True))
            self.model.load_state_dict(state)
            run = local_train(self.model, self.task, self.x, self.y, epochs=float(config["local_epochs"]),
                              batch_size=self.opts["batch_size"], lr=self.opts["lr"],
                              seed=int(config["server_round"]) * 100_003 + int(self.cid))
            with self.lock:
                self.asked.setdefault(int(config["server_round"]), {})[self.cid] = dict(config)
            return self.get_parameters({}), int(self.y.shape[0]), {"loss": run.last_loss}

    class InProcessProxy(ClientProxy):
        """Flower's view of a client that lives in this process (no transport)."""

        def __init__(self, cid: str, client: Any) -> None:
            super().__init__(cid)
            self.client = client.to_client()

        def fit(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return self.client.fit(ins)

        def get_parameters(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            params = self.client.get_parameters(ins).parameters
            return GetParametersRes(status=FlowerStatus(Code.OK, ""), parameters=params)

        def evaluate(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return self.client.evaluate(ins)

        def get_properties(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            return self.client.get_properties(ins)

        def reconnect(self, ins: Any, timeout: float | None, group_id: int | None) -> Any:
            raise NotImplementedError("in-process clients do not reconnect")

    return TaskClient, InProcessProxy


def run_flower(rounds: Sequence[Mapping[str, Any]], samples: Sequence[float] | None = None, *, task: Any = None,
               batch_size: int = 32, lr: float = 0.05, test_samples: int = 500, threads: int = 1,
               max_workers: int | None = 1) -> FlowerRun:
    """Run the planned rounds with Flower's server loop and training clients (see the module docstring).

    Parameters
    ----------
    rounds
        Round configurations in server-round order (``flower_round_config`` documents).
    samples
        Samples per user (the plans' ``problem.samples``): user ``u`` holds ``samples[u]`` synthetic examples.
        Default: as the round configurations say for the users they select (``config["samples"]``), and their
        median for the users never selected; the users are ``0 .. num_users - 1``.
    task
        An :class:`~edgeplan.validation.fltask.FLTask` (default: the FMNIST CNN task).
    batch_size, lr
        Local SGD minibatch and step size.
    test_samples
        Size of the server's test set.
    threads, max_workers
        Torch threads, and how many clients Flower trains at once (its ``Server.max_workers``).
    """
    import torch
    from flwr.common import ndarrays_to_parameters
    from flwr.server import Server, SimpleClientManager

    from edgeplan.io.flower_strategy import PlannedFedAvg
    from edgeplan.validation.fltask import fl_task, torch_threads

    if not rounds:
        raise ProblemDataError("`rounds` is empty; expected one round configuration per server round")
    task = task or fl_task()
    if samples is None:
        samples = _planned_samples(rounds)
    TaskClient, InProcessProxy = _client_classes()
    asked: dict[int, dict[str, dict[str, Any]]] = {}
    lock = threading.Lock()
    opts = {"batch_size": batch_size, "lr": lr}
    manager = SimpleClientManager()
    for u, n in enumerate(samples):
        x, y = task.user_data(u, round(float(n)))
        manager.register(InProcessProxy(str(u), TaskClient(str(u), task, x, y, asked, lock, opts)))
    model = task.new_model()
    keys = list(model.state_dict())
    x_test, y_test = task.test_data(test_samples)
    accuracy: list[float] = []

    def evaluate(server_round: int, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[float, dict]:
        model.load_state_dict(dict(zip(keys, (torch.from_numpy(np.array(p)) for p in parameters), strict=True)))
        acc = task.accuracy(model, x_test, y_test)
        if server_round > 0:
            accuracy.append(acc)
        return float(task.loss(model, x_test, y_test).detach()), {"accuracy": acc}

    init = ndarrays_to_parameters([v.detach().cpu().numpy() for v in model.state_dict().values()])
    strategy = PlannedFedAvg(list(rounds), initial_parameters=init, evaluate_fn=evaluate)
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(max_workers)
    with torch_threads(threads):
        history, _ = server.fit(num_rounds=len(rounds), timeout=None)
    return FlowerRun(history=history, executed=strategy.executed, asked=asked, accuracy=accuracy)


def _planned_samples(rounds: Sequence[Mapping[str, Any]]) -> list[float]:
    known: dict[int, float] = {}
    for cfg in rounds:
        for entry in cfg["fit_clients"]:
            known[int(entry["cid"])] = float(entry["config"]["samples"])
    n = max(int(cfg.get("num_users", 0)) for cfg in rounds)
    n = max(n, max(known, default=-1) + 1)
    fill = float(np.median(list(known.values()))) if known else 1.0
    return [known.get(u, fill) for u in range(n)]


__all__ = ["FlowerRun", "run_flower"]
