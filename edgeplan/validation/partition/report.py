"""What the partition executors report: predicted against measured seconds per stage and in total."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: A figure is "within" when |measured / predicted - 1| <= WITHIN.
WITHIN = 0.10


@dataclass(frozen=True, slots=True)
class StageComparison:
    """Predicted and measured seconds of one stage (a tier or a link)."""

    stage: str
    predicted_s: float
    measured_s: float
    note: str = ""

    @property
    def error(self) -> float:
        """``measured / predicted - 1`` (nan when both are 0)."""
        if self.predicted_s == 0:
            return 0.0 if self.measured_s == 0 else float("inf")
        return self.measured_s / self.predicted_s - 1.0


@dataclass(frozen=True, slots=True)
class PartitionValidationReport:
    """What :func:`validate_split` and :func:`validate_pipeline` measured against the prediction."""

    kind: str
    stages: tuple[StageComparison, ...]
    predicted_s: float
    measured_s: float
    output_max_abs_error: float
    output_rel_error: float
    time_source: tuple[str, ...]
    details: dict[str, Any]

    @property
    def error(self) -> float:
        """End-to-end ``measured / predicted - 1``."""
        return self.measured_s / self.predicted_s - 1.0 if self.predicted_s > 0 else float("inf")

    @property
    def within_10pct(self) -> float:
        """Share of stages (with a nonzero prediction) and of the end-to-end figure within +-10 %."""
        errs = [s.error for s in self.stages if s.predicted_s > 0] + [self.error]
        return float(np.mean(np.abs(errs) <= WITHIN))

    def __str__(self) -> str:
        rows = [f"{self.kind}: predicted {1e3 * self.predicted_s:.3f} ms, measured {1e3 * self.measured_s:.3f} ms, "
                f"error {100 * self.error:+.1f} %; {100 * self.within_10pct:.0f} % of figures within +-10 %; "
                f"output deviation {self.output_max_abs_error:.3g} (relative {self.output_rel_error:.3g})",
                f"  {'stage':<22} {'predicted ms':>12} {'measured ms':>12} {'error':>8}  note"]
        for s in self.stages:
            err = f"{100 * s.error:>7.1f}%" if np.isfinite(s.error) else f"{'-':>8}"
            rows.append(f"  {s.stage:<22} {1e3 * s.predicted_s:>12.3f} {1e3 * s.measured_s:>12.3f} {err}  {s.note}")
        rows.append(f"  block times: {', '.join(sorted(set(self.time_source)))}")
        return "\n".join(rows)


__all__ = ["WITHIN", "PartitionValidationReport", "StageComparison"]
