"""The ``flower`` export of FL plans: the per-round client configuration a Flower strategy hands out.

One JSON file per round (``flower_round_NNNN.json``): for every selected client its ``FitIns.config``
(server round, local epochs, samples, base station, bandwidth, transmit power, CPU clock, deadline, planned
latency and upload time, payload), keyed by a client id (``client_ids``; default the user index as a string),
and the number of users the round chose from. :class:`edgeplan.io.flower_strategy.PlannedFedAvg` is the
Flower strategy that reads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.registry import exporter

FLOWER_FORMAT = "edgeplan.flower.round"
FLOWER_VERSION = 1


def flower_round_config(problem: FLRound | FLRoundEnergy, plan: FLSchedule | FLEnergySchedule, server_round: int = 1,
                        client_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The Flower-style configuration of one round (see the module docstring).

    Parameters
    ----------
    problem, plan
        A round (:class:`FLRound` or :class:`FLRoundEnergy`) and its schedule.
    server_round
        The Flower server round this plan is for (1-based).
    client_ids
        One client id per user (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    dict
        ``format``, ``version``, ``server_round``, ``family``, ``num_users``, ``num_clients``,
        ``round_latency_s``, ``round_energy_j`` and ``fit_clients``: ``[{"cid", "config"}]``.
    """
    n = problem.n_users
    ids = [str(i) for i in range(n)] if client_ids is None else [str(c) for c in client_ids]
    if len(ids) != n:
        raise ProblemDataError(f"`client_ids` has {len(ids)} names; expected {n}, one per user")
    metrics = problem.evaluate(plan)
    users = np.flatnonzero(plan.selected)
    energy = isinstance(problem, FLRoundEnergy)
    deadline = problem.pair_deadline_s if energy else problem.window_s
    clients = []
    for u in users:
        m = int(plan.bs[u])
        epochs = float(problem.local_epochs[u])
        power = float(plan.power_w[u]) if energy else float(problem.tx_power_w[u])
        cpu = float(plan.cpu_hz[u]) if energy else float(problem.cpu_hz[u])
        upload = float(metrics.latency_s[u] - problem.cycles[u] / cpu) if energy else float(metrics.upload_s[u])
        config = {"server_round": int(server_round), "local_epochs": int(epochs) if epochs.is_integer() else epochs,
                  "samples": float(problem.samples[u]), "base_station": m,
                  "bandwidth_hz": float(plan.bandwidth_hz[u]), "tx_power_w": power, "cpu_hz": cpu,
                  "deadline_s": float(deadline[u, m]) if np.isfinite(deadline[u, m]) else -1.0,
                  "planned_latency_s": float(metrics.latency_s[u]), "planned_upload_s": upload,
                  "payload_bits": float(problem.payload_bits)}
        clients.append({"cid": ids[u], "config": config})
    lat = metrics.latency_s[users]
    return {"format": FLOWER_FORMAT, "version": FLOWER_VERSION, "server_round": int(server_round),
            "family": "fl-energy" if energy else "fl-round", "num_users": int(n), "num_clients": int(users.size),
            "round_latency_s": float(lat.max()) if users.size else 0.0,
            "round_energy_j": float(metrics.objective) if energy else None, "fit_clients": clients}


def _write_flower(problem: Any, plan: Any, out_dir: Path, *, server_round: int = 1,
                  client_ids: Sequence[str] | None = None) -> list[Path]:
    path = Path(out_dir) / f"flower_round_{int(server_round):04d}.json"
    path.write_text(json.dumps(flower_round_config(problem, plan, server_round, client_ids), indent=2) + "\n")
    return [path]


@exporter("flower", plan=FLSchedule)
def export_flower_round(problem: FLRound, plan: FLSchedule, out_dir: Path, **kwargs: Any) -> list[Path]:
    """Flower-style per-round client configuration (``FitIns.config`` per selected client), one JSON file."""
    return _write_flower(problem, plan, out_dir, **kwargs)


@exporter("flower", plan=FLEnergySchedule)
def export_flower_energy_round(problem: FLRoundEnergy, plan: FLEnergySchedule, out_dir: Path,
                               **kwargs: Any) -> list[Path]:
    """Flower-style per-round client configuration (clock and power included), one JSON file."""
    return _write_flower(problem, plan, out_dir, **kwargs)


__all__ = ["FLOWER_FORMAT", "FLOWER_VERSION", "export_flower_energy_round", "export_flower_round",
           "flower_round_config"]
