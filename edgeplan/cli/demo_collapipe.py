"""The demo's CollaPipe part: a horizon of moving phones, controlled online under per-device energy budgets."""

from __future__ import annotations


def collapipe_demo(n_slots: int = 200, V: float = 100.0) -> int:
    """Run DSSRA and the baselines over ``n_slots`` slots of a 4-phone cluster training a 12-block encoder, and
    print each policy's time-average round latency and worst budget excess. 0 when DSSRA keeps every budget."""
    from edgeplan.formulations.partition.collapipe_instances import collapipe_horizon
    from edgeplan.solvers.partition.dssra import POLICIES, run_policy

    h = collapipe_horizon(n_slots, seed=0)
    print(f"{n_slots} slots, 4 phones moving in a 60 m square, a 12-block BERT-style encoder; energy budgets "
          f"{', '.join(f'{b:.2f}' for b in h.energy_budget_j)} J per round")
    print(f"  {'policy':<15} {'latency s':>10} {'worst excess':>13}  budgets")
    ok = False
    for policy in POLICIES:
        run = run_policy(h, policy, V)
        worst = float((run.excess / h.energy_budget_j).max())
        kept = bool((run.excess <= 0).all())
        ok |= policy == "dssra" and kept
        print(f"  {policy + (f' V={V:g}' if policy == 'dssra' else ''):<15} {run.average_penalty:>10.3f} "
              f"{worst:>+13.1%}  {'kept' if kept else 'overspent'}")
    return 0 if ok else 1


__all__ = ["collapipe_demo"]
