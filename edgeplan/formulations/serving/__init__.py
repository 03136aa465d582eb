"""Speculative serving: which drafters draft for which requests, which requests the verifier checks, and how
many tokens each speculates (CoSine).

* :class:`SpeculativeServing` / :class:`ServingPlan` / :class:`ServingMetrics`: one scheduling step
  (:mod:`.step`), its MILP in :mod:`.milp`;

Seeded instances in :mod:`.instances` (``"speculative-step"``).
"""

from edgeplan.formulations.serving.step import ServingMetrics, ServingPlan, SpeculativeServing

__all__ = ["ServingMetrics", "ServingPlan", "SpeculativeServing"]
