"""The ``sync-schedule`` export of sync plans: what a runtime needs to execute them, one JSON file each.

* FedAttn (``kv_sync_schedule.json``): the synced blocks, each participant's token range (``[start, end)`` in
  the prompt) and, per synced block, which participants upload their K/V and which token range each
  downloads; the predicted latency, error and bytes.
* CoCoDC (``fragment_schedule.json``): per slot, the fragment indices to send, their bytes and the predicted
  transfer time against the slot's capacity; the fragment sizes; the predicted value.

A runtime reads ``blocks`` (or ``slots[t]["fragments"]``) and nothing else is required; the rest is there to
check the run against the plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan
from edgeplan.registry import exporter

SYNC_FORMAT = "edgeplan.sync.schedule"
SYNC_VERSION = 1


def kv_schedule(problem: KVSyncSchedule, plan: SyncPlan) -> dict[str, Any]:
    """The FedAttn export's content (module docstring).

    Parameters
    ----------
    problem, plan
        A FedAttn schedule and its plan.
    """
    m = problem.evaluate(plan)
    start = np.concatenate([[0], np.cumsum(problem.tokens)]).astype(int).tolist()
    up, down = problem.exchanged_tokens()
    parts = [{"participant": i, "tokens": [start[i], start[i + 1]], "uploads": bool(up[i] > 0),
              "downloads": ([0, start[i]] if problem.causal else "all others") if down[i] > 0 else None}
             for i in range(problem.n_participants)]
    return {"format": SYNC_FORMAT, "version": SYNC_VERSION, "kind": "fedattn", "name": problem.name,
            "n_blocks": problem.n_blocks, "causal": problem.causal, "blocks": list(plan.blocks),
            "participants": parts, "latency_s": m.latency_s, "error": m.error,
            "error_budget": None if np.isinf(problem.error_budget) else problem.error_budget,  # JSON: no infinity
            "bytes_up": m.bytes_up, "bytes_down": m.bytes_down}


def fragment_schedule(problem: FragmentSync, plan: FragmentPlan) -> dict[str, Any]:
    """The CoCoDC export's content (module docstring).

    Parameters
    ----------
    problem, plan
        A fragment schedule and its plan.
    """
    m = problem.evaluate(plan)
    slots = [{"slot": t, "fragments": list(plan.slots[t]), "bytes": float(m.bytes_per_slot[t]),
              "transfer_s": float(m.transfer_s[t]), "capacity_bytes": float(problem.capacity_bytes[t])}
             for t in range(problem.n_slots)]
    return {"format": SYNC_FORMAT, "version": SYNC_VERSION, "kind": "cocodc", "name": problem.name,
            "fragment_bytes": problem.sizes_bytes.tolist(), "max_staleness": problem.max_staleness,
            "slots": slots, "value": m.value}


def _write(out_dir: Path, name: str, content: dict[str, Any]) -> list[Path]:
    path = Path(out_dir) / name
    path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n")
    return [path]


@exporter("sync-schedule", plan=SyncPlan)
def export_kv_schedule(problem: KVSyncSchedule, plan: SyncPlan, out_dir: Path, **kwargs: Any) -> list[Path]:
    """FedAttn's synced blocks and K/V exchange per participant, one JSON file."""
    return _write(out_dir, "kv_sync_schedule.json", kv_schedule(problem, plan, **kwargs))


@exporter("sync-schedule", plan=FragmentPlan)
def export_fragment_schedule(problem: FragmentSync, plan: FragmentPlan, out_dir: Path,
                             **kwargs: Any) -> list[Path]:
    """CoCoDC's fragment lists per slot, one JSON file."""
    return _write(out_dir, "fragment_schedule.json", fragment_schedule(problem, plan, **kwargs))


__all__ = ["SYNC_FORMAT", "SYNC_VERSION", "export_fragment_schedule", "export_kv_schedule", "fragment_schedule",
           "kv_schedule"]
