"""The ``serving-step`` export of a speculative-serving step's plan: what a serving hub needs to run it, one JSON file.

``requests`` lists, per pending request, whether it is batched, its drafters and speculation length, and the
model's expected committed tokens; ``drafters`` lists each drafter's requests in the order it drafts for them
and how many rounds it drafts; the step's predicted times (each draft round, the verification, the step), its
verified tokens and verifier memory let a run be checked against the plan. A hub reads ``requests`` and nothing
else is required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing
from edgeplan.registry import exporter

SERVING_FORMAT = "edgeplan.serving.step"
SERVING_VERSION = 1


def serving_step(problem: SpeculativeServing, plan: ServingPlan) -> dict[str, Any]:
    """The export's content (module docstring).

    Parameters
    ----------
    problem, plan
        A step and its plan.
    """
    m = problem.evaluate(plan)
    reqs = [{"request": r, "domain": int(problem.domain[r]), "batched": s is not None,
             "drafters": [] if not s else list(s), "speculation": int(plan.lengths[r]),
             "expected_tokens": float(m.expected_tokens[r]), "acceptance": float(m.acceptance[r])}
            for r, s in enumerate(plan.routes)]
    drafters = [{"drafter": j, "requests": [r for r, s in enumerate(plan.routes) if s and j in s],
                 "rounds": max([int(plan.lengths[r]) for r, s in enumerate(plan.routes) if s and j in s], default=0)}
                for j in range(problem.n_drafters)]
    return {"format": SERVING_FORMAT, "version": SERVING_VERSION, "name": problem.name, "requests": reqs,
            "drafters": drafters, "round_s": m.round_s.tolist(), "draft_s": m.draft_s, "verify_s": m.verify_s,
            "step_s": m.step_s, "verify_tokens": m.tokens, "verifier_memory_bytes": m.memory_bytes,
            "cost": m.cost}


@exporter("serving-step", plan=ServingPlan)
def export_serving_step(problem: SpeculativeServing, plan: ServingPlan, out_dir: Path, **kwargs: Any) -> list[Path]:
    """One step's batch, routes and speculation lengths with its predictions, one JSON file."""
    path = Path(out_dir) / "serving_step.json"
    path.write_text(json.dumps(serving_step(problem, plan, **kwargs), indent=2, allow_nan=False) + "\n")
    return [path]


__all__ = ["SERVING_FORMAT", "SERVING_VERSION", "export_serving_step", "serving_step"]
