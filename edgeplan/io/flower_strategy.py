"""A Flower ``Strategy`` that applies edgeplan FL plans round by round.

:class:`PlannedFedAvg` is Flower's ``FedAvg`` whose ``configure_fit`` follows a plan instead of sampling: in
server round :math:`r` it sends ``FitIns`` to exactly the clients the :math:`r`-th round configuration selects
(the ``flower`` export's ``flower_round_NNNN.json`` files, :func:`~edgeplan.io.export.flower.flower_round_config`,
or ``simulate_fl(..., keep_flower=True).flower``), each with its planned ``config``: local epochs, base
station, bandwidth, transmit power, CPU clock, deadline and the planned latency. Aggregation is FedAvg's
(weighted by the clients' example counts). The plan names users by edgeplan client ids (``"0"``, ``"1"``, ...
or the ``client_ids`` given to the export); ``client_map`` maps them to the Flower client ids the server sees
(``ClientProxy.cid``: a SuperNode's node id in a deployment), identity by default.

A planned client that is not connected is an error in that round (``missing="raise"``, default) or left out
(``missing="skip"``, recorded in :attr:`PlannedFedAvg.missing`). :attr:`PlannedFedAvg.executed` records which
clients each round actually sent work to, with their configs, so a run can be checked against its plan.

Written against Flower's strategy interface (``flwr.server.strategy.FedAvg``; tested with flwr 1.42). Needs
``flwr`` (``pip install flwr``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flwr.common import FitIns, Parameters
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.io.export.flower import FLOWER_FORMAT

MISSING = ("raise", "skip")


def load_round_configs(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Round configurations from ``flower_round_NNNN.json`` files, in round order (format checked).

    Parameters
    ----------
    paths
        The files the ``flower`` export wrote.

    Returns
    -------
    list of dict
        The rounds sorted by ``server_round``: :class:`PlannedFedAvg`'s ``rounds``.
    """
    out = []
    for p in paths:
        doc = json.loads(Path(p).read_text())
        if not isinstance(doc, dict) or doc.get("format") != FLOWER_FORMAT:
            raise PlanError(f"`{p}`: key `format` = {doc.get('format') if isinstance(doc, dict) else doc!r}; "
                            f"expected {FLOWER_FORMAT!r}")
        out.append(doc)
    return sorted(out, key=lambda d: int(d["server_round"]))


class PlannedFedAvg(FedAvg):
    """FedAvg that selects and configures clients as planned (see the module docstring).

    Parameters
    ----------
    rounds
        One round configuration per server round (round :math:`r` uses ``rounds[r - 1]``), or a callable
        ``server_round -> configuration`` (plans made online, round by round).
    client_map
        edgeplan client id -> Flower client id (default: the same).
    missing
        ``"raise"`` or ``"skip"`` a planned client that is not connected.
    **fedavg
        Passed to ``FedAvg`` (``initial_parameters``, ``evaluate_fn``, ``fraction_evaluate`` ...).
    """

    def __init__(self, rounds: Sequence[Mapping[str, Any]] | Callable[[int], Mapping[str, Any]], *,
                 client_map: Mapping[str, str] | None = None, missing: str = "raise", **fedavg: Any) -> None:
        if missing not in MISSING:
            raise ProblemDataError(f"`missing` = {missing!r}; expected one of {', '.join(MISSING)}")
        fedavg.setdefault("fraction_evaluate", 0.0)
        fedavg.setdefault("min_evaluate_clients", 0)
        super().__init__(**fedavg)
        self.rounds = rounds
        self.client_map = dict(client_map or {})
        self.missing_policy = missing
        self.executed: dict[int, list[dict[str, Any]]] = {}
        self.missing: dict[int, list[str]] = {}

    def __repr__(self) -> str:
        return f"PlannedFedAvg(missing={self.missing_policy!r})"

    def round_config(self, server_round: int) -> Mapping[str, Any]:
        """The plan's configuration of ``server_round`` (1-based)."""
        if callable(self.rounds):
            return self.rounds(server_round)
        if not 1 <= server_round <= len(self.rounds):
            raise PlanError(f"server round {server_round} has no plan; the plan covers rounds 1..{len(self.rounds)}")
        return self.rounds[server_round - 1]

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, FitIns]]:
        """The planned clients of this round, each with its planned ``FitIns.config``."""
        cfg = self.round_config(server_round)
        connected = client_manager.all()
        out, done, absent = [], [], []
        for entry in cfg["fit_clients"]:
            cid = self.client_map.get(str(entry["cid"]), str(entry["cid"]))
            proxy = connected.get(cid)
            if proxy is None:
                absent.append(cid)
                continue
            config = {k: v for k, v in entry["config"].items() if isinstance(v, bool | int | float | str | bytes)}
            out.append((proxy, FitIns(parameters, config)))
            done.append({"cid": cid, "config": config})
        if absent and self.missing_policy == "raise":
            raise PlanError(f"round {server_round}: planned clients {absent} are not connected (connected: "
                            f"{sorted(connected)[:10]}...); map edgeplan ids to Flower ids with `client_map`")
        self.executed[server_round] = done
        if absent:
            self.missing[server_round] = absent
        return out


__all__ = ["MISSING", "PlannedFedAvg", "load_round_configs"]
