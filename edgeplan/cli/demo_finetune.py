"""The demo's fine-tuning part: a FedQuad round measured on GPT-2 here, solved, and its plan executed."""

from __future__ import annotations


def finetune_demo(n_devices: int = 6) -> int:
    """Measure GPT-2 (small) LoRA configurations here, solve the round exactly and with FedQuad, and run the exact
    plan's configurations (``peft`` LoRA, quantized activations): predicted against measured. 0 when the
    memory prediction holds (within 1 %)."""
    from edgeplan.solvers.api import solve
    from edgeplan.validation.finetune.execute import measured_instance, validate_finetune

    p = measured_instance(n_devices, model="gpt2:small", rounds=2, seed=0)
    print(f"{p.n_devices} preset devices, {p.n_candidates} configurations each (LoRA depth 1-6, up to 6 blocks "
          "with 8- or 4-bit activations), measured here on GPT-2 small")
    best = None
    for m in ("finetune-sweep", "fedquad", "uniform-depth", "full-depth"):
        r = solve(p, m)
        best = best or r
        shown = f"{r.fun:.4f} progress/s, round {p.evaluate(r.plan).round_time_s:.2f} s" if r.has_plan else r.message
        print(f"  {m:<15} {r.status.value:<11} {shown}")
    report = validate_finetune(p, best.plan, rounds=2)
    print(report)
    return 0 if all(abs(row["memory_err"]) <= 0.01 for row in report.rows) else 1


__all__ = ["finetune_demo"]
