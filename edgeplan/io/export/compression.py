"""The ``compression-plan`` export of a Caesar round: what a federated server needs to run it, one JSON file.

``devices`` lists, per device, its download and upload ratios and batch size, the bytes each codec puts on the
wire (exact: the codecs' payload lengths), the predicted round time and idle time at the barrier, the upload
error share and the predicted download error. The round's totals (traffic, barrier, weighted upload deviation)
let a run be checked against the plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeplan.formulations.compression.round import CompressionChoice, CompressionRound
from edgeplan.registry import exporter

COMPRESSION_FORMAT = "edgeplan.compression.round"
COMPRESSION_VERSION = 1


def compression_plan(problem: CompressionRound, plan: CompressionChoice) -> dict[str, Any]:
    """The export's content (module docstring).

    Parameters
    ----------
    problem, plan
        A round and its plan.
    """
    m = problem.evaluate(plan)
    rows = range(problem.n_devices)
    devices = [{"device": i, "download_ratio": float(problem.levels[plan.down[i]]),
                "upload_ratio": float(problem.levels[plan.up[i]]), "batch": int(plan.batch[i]),
                "download_bytes": float(m.down_bytes[i]), "upload_bytes": float(m.up_bytes[i]),
                "round_s": float(m.finish_s[i]), "idle_s": float(m.idle_s[i]),
                "upload_error": float(problem.upload_error[i, plan.up[i]]),
                "download_error": float(m.download_error[i])} for i in rows]
    return {"format": COMPRESSION_FORMAT, "version": COMPRESSION_VERSION, "name": problem.name, "goal": problem.goal,
            "tensor_sizes": problem.sizes.tolist(), "devices": devices, "traffic_bytes": m.traffic_bytes,
            "round_s": m.round_s, "upload_deviation": m.upload_deviation, "upload_budget": problem.upload_budget
            if problem.upload_budget != float("inf") else None, "samples": m.samples}


@exporter("compression-plan", plan=CompressionChoice)
def export_compression_plan(problem: CompressionRound, plan: CompressionChoice, out_dir: Path,
                            **kwargs: Any) -> list[Path]:
    """Every device's ratios, batch size, bytes and predicted times, one JSON file."""
    path = Path(out_dir) / "compression_plan.json"
    path.write_text(json.dumps(compression_plan(problem, plan, **kwargs), indent=2, allow_nan=False) + "\n")
    return [path]


__all__ = ["COMPRESSION_FORMAT", "COMPRESSION_VERSION", "compression_plan", "export_compression_plan"]
