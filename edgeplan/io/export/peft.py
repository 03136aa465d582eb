"""The ``peft`` export of fine-tuning plans: per device, the configuration a client applies.

One JSON file (``finetune_plan.json``) with, for every device, the chosen candidate's fields (for FedQuad: LoRA
depth, quantized layers and bit width; for FedBE: the expanded blocks) and, for FedQuad plans, the keyword
arguments of ``peft.LoraConfig`` that put LoRA on the device's top blocks (``layers_to_transform``,
``layers_pattern``, ``target_modules`` when the round names a zoo model), the blocks whose saved activations
are quantized, and the planned step, round time, memory and upload. A client builds its adapter with
``LoraConfig(**device["lora_config"])``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeplan.formulations.finetune.candidates import LORA_TARGETS
from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.registry import exporter

PEFT_FORMAT = "edgeplan.finetune.plan"
PEFT_VERSION = 1


def device_configs(problem: FineTuneRound, plan: FineTunePlan, *, n_layers: int | None = None, rank: int = 8,
                   client_ids: list[str] | None = None) -> dict[str, Any]:
    """The export's content (see the module docstring).

    Parameters
    ----------
    problem, plan
        A fine-tuning round and its plan.
    n_layers
        Blocks of the model (default: the largest LoRA depth among the candidates).
    rank
        LoRA rank written into each ``LoraConfig`` (``lora_alpha`` is twice it).
    client_ids
        One id per device (default ``"0"``, ``"1"``, ...).
    """
    m = problem.evaluate(plan)
    ids = client_ids or [str(i) for i in range(problem.n_devices)]
    name = problem.model.partition(":")[0]
    targets, pattern, fan = LORA_TARGETS.get(name, ((), None, False))
    d_col = problem.field_index("lora_depth")
    L = n_layers or (int(problem.config[..., d_col].max()) if d_col is not None else 0)
    devices = []
    for i, c in enumerate(plan.choice):
        cfg = problem.describe(i, int(c))
        entry: dict[str, Any] = {"cid": ids[i], "candidate": int(c), "config": cfg,
                                 "step_time_s": float(problem.step_time_s[i, c]),
                                 "device_round_s": float(m.device_time_s[i]), "memory_bytes": float(m.memory_bytes[i]),
                                 "upload_bytes": float(m.upload_bytes[i])}
        if d_col is not None:
            d, q = cfg["lora_depth"], cfg.get("quantized_layers", 0)
            layers = list(range(L - d, L))
            lora: dict[str, Any] = {"r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
                                    "layers_to_transform": layers}
            if targets:
                lora.update(target_modules=list(targets), layers_pattern=pattern, fan_in_fan_out=fan)
            entry["lora_config"] = lora
            entry["quantized_blocks"] = layers[:q]
            entry["activation_bits"] = cfg.get("bits", 0)
        if "block_mask" in cfg:
            entry["trained_blocks"] = [j for j in range(problem.n_blocks) if cfg["block_mask"] >> j & 1]
        devices.append(entry)
    return {"format": PEFT_FORMAT, "version": PEFT_VERSION, "model": problem.model, "goal": problem.goal,
            "round_time_s": m.round_time_s, "utility": m.utility, "objective": m.objective, "devices": devices}


@exporter("peft", plan=FineTunePlan)
def export_peft(problem: FineTuneRound, plan: FineTunePlan, out_dir: Path, **kwargs: Any) -> list[Path]:
    """Per-device fine-tuning configuration (``peft.LoraConfig`` fields, quantized blocks), one JSON file."""
    path = Path(out_dir) / "finetune_plan.json"
    path.write_text(json.dumps(device_configs(problem, plan, **kwargs), indent=2) + "\n")
    return [path]


__all__ = ["PEFT_FORMAT", "PEFT_VERSION", "device_configs", "export_peft"]
