"""Problem families: frozen data plus ``objective``/``evaluate``/``check`` of any plan.

:class:`MILP` (:mod:`edgeplan.formulations.milp`) is the generic form the families reduce to; each family
is a folder (:data:`edgeplan.registry.FAMILIES`): ``partition/`` (split inference, pipelines), ``fl/`` (FL
rounds), ``slide/`` (download-while-infer), ``cache/`` (CoCa). A family's public names (its
``__init__.__all__``) are importable from here and from ``edgeplan``, and are loaded on first access, so
``import edgeplan`` stays light.
"""

from __future__ import annotations

from typing import Any

from edgeplan.formulations.base import FEAS_TOL, INT_TOL, Problem, Violation
from edgeplan.formulations.milp import MILP, MILPMetrics


def __getattr__(name: str) -> Any:
    from edgeplan.registry import public_name

    try:
        return public_name(name)
    except AttributeError:
        raise AttributeError(f"module 'edgeplan.formulations' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    from edgeplan.registry import public_names

    return sorted({*globals(), *public_names()})


__all__ = ["FEAS_TOL", "INT_TOL", "MILP", "MILPMetrics", "Problem", "Violation"]
