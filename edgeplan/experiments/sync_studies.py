"""The measured studies of the sync family: FedAttn's quality/communication trade-off and CoCoDC's steps to a
target loss, on the real models of :mod:`edgeplan.validation.sync`.

* :func:`fedattn_curve`: KL to centralised attention, loss and agreement against K/V bytes per prompt, over
  the sync interval :math:`H` and the participants :math:`N`; :func:`plot_fedattn_curve` draws it;
* :func:`fedattn_equal_quality`: for every uniform :math:`H`, the exact schedule planned on the calibrated error
  model within the uniform schedule's predicted error, both measured on held-out prompts;
* :func:`regions_study`: DiLoCo, Streaming DiLoCo and CoCoDC trained for real, steps and wall-clock to a target.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan


def uniform_blocks(n_blocks: int, h: int, first: int | None = None) -> list[int]:
    """FedAttn's schedule, every :math:`H` blocks from block ``first`` (default :math:`H-1`: blocks
    :math:`H-1, 2H-1, \\dots`; none when it is past the last block)."""
    return list(range(h - 1 if first is None else first, n_blocks, h))


def fedattn_curve(model: Any, ids: Any, participants: list[int], intervals: list[int]) -> list[dict[str, Any]]:
    """One row per (N, H, phase): measured KL, loss, agreement and K/V bytes per prompt of the schedule every
    :math:`H` blocks from block :math:`H-1` (``phase`` ``"last"``) and from block 0 (``"first"``); ``H > L``:
    no sync."""
    import torch

    from edgeplan.validation.sync.fedattn import quality, split_tokens

    L = len(model.transformer.h)
    with torch.no_grad():
        central = model(ids).logits
    rows = []
    for n in participants:
        tokens = split_tokens(ids.shape[1], n)
        for h in intervals:
            for phase, first in (("last", None), ("first", 0)):
                if phase == "first" and (h == 1 or h > L):
                    continue  # the same schedule as the other phase
                q = quality(model, ids, tokens, uniform_blocks(L, h, first), central)
                rows.append({"N": n, "H": h, "phase": phase, "kl": q["kl"], "loss": q["loss"],
                             "agreement": q["agreement"], "bytes": (q["bytes_up"] + q["bytes_down"]) / ids.shape[0]})
    return rows


def plot_fedattn_curve(rows: list[dict[str, Any]], path: str | Path | None = None) -> Any:
    """KL and agreement against bytes per prompt, one line per N and phase (KL of 0 drawn at 1e-6)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax_kl, ax_ag = fig.subplots(1, 2)
    colors = {}
    for n in sorted({r["N"] for r in rows}):
        for phase, style in (("last", "o-"), ("first", "s--")):
            shared = [r for r in rows if r["N"] == n and r["phase"] == "last" and (r["H"] == 1 or r["bytes"] == 0)]
            own = [r for r in rows if r["N"] == n and r["phase"] == phase]
            pts = sorted({id(r): r for r in own + shared}.values(), key=lambda r: r["bytes"])
            x = [r["bytes"] / 1024 for r in pts]
            label = f"N = {n}, from block {'H-1' if phase == 'last' else '0'}"
            line = ax_kl.plot(x, [max(r["kl"], 1e-6) for r in pts], style, label=label, color=colors.get(n))
            colors[n] = line[0].get_color()
            ax_ag.plot(x, [r["agreement"] for r in pts], style, label=label, color=colors[n])
    ax_kl.set_yscale("log")
    ax_kl.set_xlabel("K/V KiB per prompt (up + down)")
    ax_kl.set_ylabel("KL to centralised attention (nats/token)")
    ax_ag.set_xlabel("K/V KiB per prompt (up + down)")
    ax_ag.set_ylabel("greedy agreement with centralised")
    ax_kl.legend(fontsize=7)
    fig.suptitle("FedAttn on the trained decoder: quality against communication")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def fedattn_equal_quality(model: Any, calib_ids: Any, held_ids: Any, n_participants: int,
                          *, max_schedules: int = 96) -> dict[str, Any]:
    """Calibrate the error model on ``calib_ids``; for every uniform :math:`H`, solve ``kv-sync-dp`` on a
    communication-only schedule (time is K/V bytes) within the uniform schedule's predicted error, and measure
    both on ``held_ids``. Returns the calibration's held-out fit and one row per :math:`H`."""
    from edgeplan.solvers.api import solve
    from edgeplan.validation.sync.fedattn import calibrate, held_out, quality, split_tokens

    L = len(model.transformer.h)
    n = calib_ids.shape[1]
    tokens = split_tokens(n, n_participants)
    table, plans, _ = calibrate(model, calib_ids, tokens, max_schedules=max_schedules)
    fit = held_out(model, held_ids, tokens, table, plans)
    kv = 2.0 * model.config.n_embd * 4
    zeros = np.zeros((n_participants, L))
    p = KVSyncSchedule(tokens=tokens, kv_bytes_per_token=np.full(L, kv), local_time_s=zeros, global_time_s=zeros,
                       uplink_bps=np.ones(n_participants), downlink_bps=np.ones(n_participants), error=table)
    rows = []
    for h in range(1, L + 1):
        uni = SyncPlan(uniform_blocks(L, h))
        budget = p.evaluate(uni).error
        r = solve(dataclasses.replace(p, error_budget=budget), "kv-sync-dp")
        mu, me = (quality(model, held_ids, tokens, s.blocks) for s in (uni, r.plan))
        per = held_ids.shape[0]
        rows.append({"H": h, "uniform_blocks": list(uni.blocks), "exact_blocks": list(r.plan.blocks),
                     "budget": budget, "uniform_kl": mu["kl"], "exact_kl": me["kl"],
                     "uniform_bytes": (mu["bytes_up"] + mu["bytes_down"]) / per,
                     "exact_bytes": (me["bytes_up"] + me["bytes_down"]) / per})
    return {"fit": {k: fit[k] for k in ("median_rel_error", "p90_rel_error", "r2")}, "rows": rows}


def regions_study(cfg: Any, schedules: tuple[str, ...] = ("diloco", "streaming-diloco", "cocodc"),
                  target: float | None = None) -> dict[str, Any]:
    """Train under each schedule; the target (default: the worst final loss, so that every run reaches it) and
    each run's steps and seconds to it, with its transfers' predicted-against-measured share within 10 %."""
    from edgeplan.validation.sync.regions import run_regions

    runs = {s: run_regions(s, cfg) for s in schedules}
    target = max(float(r.loss[-1]) for r in runs.values()) if target is None else target
    out = {}
    for s, r in runs.items():
        sent = r.transfer_pred_s > 0
        ok = np.abs(r.transfer_meas_s[sent] - r.transfer_pred_s[sent]) <= 0.1 * r.transfer_pred_s[sent]
        out[s] = {"steps": r.steps_to(target), "wall_s": r.wall_to(target), "final_loss": float(r.loss[-1]),
                  "transfers": int(sent.sum()), "within_10pct": float(ok.mean()) if ok.size else None,
                  "worst_transfer_err": float(np.max(np.abs(r.transfer_meas_s[sent] / r.transfer_pred_s[sent] - 1)))
                  if sent.any() else None, "run": r}
    return {"target": target, "runs": out}


__all__ = ["fedattn_curve", "fedattn_equal_quality", "plot_fedattn_curve", "regions_study", "uniform_blocks"]
