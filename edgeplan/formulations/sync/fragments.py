r"""CoCoDC: which model fragments cross the wide-area link in each outer-synchronisation slot.

Zhu et al., "CoCoDC", arXiv 2504.17672 (the adaptive-transmission idea is the paper's; this planning model is
ours: ``docs/models/sync.md``). A model is cut into :math:`F` fragments of :math:`s_f` bytes. Training runs in
slots of :math:`H` inner steps; during slot :math:`t` the WAN carries :math:`r_t` bytes per second and a
fragment's transfer overlaps the slot's computation only if it ends within the overlap window :math:`\omega_t`
seconds, so the slot's capacity is :math:`C_t = r_t\,\omega_t` bytes. The value of sending fragment :math:`f`
in slot :math:`t` is :math:`v_{tf}`, the squared norm of its change over the slot (measured on a real run, or
predicted). Decision :math:`x_{tf} \in \{0, 1\}`:

.. math::

    \max \sum_{t,f} v_{tf} x_{tf} \quad\text{s.t.}\quad
    \sum_f s_f x_{tf} \le C_t\ \ \forall t,\qquad
    \sum_{t=\tau}^{\tau+W-1} x_{tf} \ge 1\ \ \forall f,\ \forall \tau \le T - W

(the second family only with a staleness limit :math:`W`: every fragment is sent at least once in every
:math:`W` consecutive slots). A slot's predicted transfer time is :math:`\sum_f s_f x_{tf} / r_t`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le


@dataclass(frozen=True, slots=True)
class FragmentPlan:
    """The fragments sent in each slot.

    Attributes
    ----------
    slots
        One tuple of fragment indices per slot (each stored sorted).
    """

    slots: Any

    def __post_init__(self) -> None:
        if not isinstance(self.slots, list | tuple | np.ndarray):
            raise PlanError(f"`slots` = {self.slots!r}; expected one list of fragment indices per slot")
        out = []
        for t, sel in enumerate(self.slots):
            if not isinstance(sel, list | tuple | range | np.ndarray) or np.ndim(sel) != 1:
                raise PlanError(f"`slots[{t}]` = {sel!r}; expected a list of fragment indices")
            arr = np.asarray(list(sel), dtype=np.int64 if len(sel) == 0 else None)
            if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
                raise PlanError(f"`slots[{t}]` = {list(sel)!r}; expected non-negative fragment indices")
            if len(set(arr.tolist())) != arr.size:
                raise PlanError(f"`slots[{t}]` = {arr.tolist()!r} has duplicates; expected distinct fragments")
            out.append(tuple(sorted(int(f) for f in arr.tolist())))
        object.__setattr__(self, "slots", tuple(out))

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {"slots": [list(s) for s in self.slots]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FragmentPlan:
        if not isinstance(data, Mapping) or set(data) != {"slots"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'slots'")
        return cls(slots=data["slots"])


@dataclass(frozen=True, slots=True)
class FragmentMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    value
        :math:`\\sum v_{tf} x_{tf}`, the objective.
    bytes_per_slot, transfer_s
        ``(T,)`` bytes sent and their transfer time :math:`\\sum_f s_f x_{tf} / r_t`.
    worst_window
        ``(F,)`` the fewest sends of each fragment in any :math:`W` consecutive slots (``inf`` without a limit).
    """

    value: float
    bytes_per_slot: np.ndarray
    transfer_s: np.ndarray
    worst_window: np.ndarray


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class FragmentSync:
    """CoCoDC's fragment schedule over a horizon (see the module docstring for the model).

    Parameters
    ----------
    sizes_bytes
        ``(F,)`` :math:`s_f`.
    value
        ``(T, F)`` :math:`v_{tf} \\ge 0`.
    wan_bps
        ``(T,)`` :math:`r_t`, WAN bytes per second in each slot (> 0).
    window_s
        :math:`\\omega_t`, the overlap window in seconds (a number or ``(T,)``).
    max_staleness
        :math:`W` (``None``: no limit).
    """

    sizes_bytes: Any
    value: Any
    wan_bps: Any
    window_s: Any
    max_staleness: int | None = None
    name: str = "fragment-sync"
    sense: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        size = as_array("sizes_bytes", self.sizes_bytes, shape=(None,), min_value=0.0)
        if size.size < 1:
            raise ProblemDataError("`sizes_bytes` is empty; expected one entry per fragment")
        val = as_array("value", self.value, shape=(None, size.size), min_value=0.0)
        if val.shape[0] < 1:
            raise ProblemDataError("`value` has no rows; expected one row per slot")
        T = val.shape[0]
        wan = as_array("wan_bps", self.wan_bps, shape=(T,), min_value=0.0, strict_min=True)
        win = as_array("window_s", np.broadcast_to(self.window_s, (T,)) if np.ndim(self.window_s) == 0
                       else self.window_s, shape=(T,), min_value=0.0)
        w = self.max_staleness
        if w is not None and (isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1):
            raise ProblemDataError(f"`max_staleness` = {w!r}; expected a whole number of slots >= 1 or None")
        for key, v in (("sizes_bytes", size), ("value", val), ("wan_bps", wan), ("window_s", win),
                       ("max_staleness", None if w is None else int(w))):
            object.__setattr__(self, key, v)

    @property
    def n_fragments(self) -> int:
        return int(self.sizes_bytes.size)

    @property
    def n_slots(self) -> int:
        return int(self.value.shape[0])

    @property
    def capacity_bytes(self) -> np.ndarray:
        """``(T,)`` :math:`C_t = r_t \\omega_t`."""
        return self.wan_bps * self.window_s

    def windows(self) -> int:
        """The number of staleness windows per fragment (0 without a limit or with :math:`W > T`)."""
        w = self.max_staleness
        return 0 if w is None or w > self.n_slots else self.n_slots - w + 1

    def matrix(self, plan: Any) -> np.ndarray:
        """``(T, F)`` bool :math:`x` of a :class:`FragmentPlan`."""
        if not isinstance(plan, FragmentPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a FragmentPlan")
        if len(plan.slots) != self.n_slots:
            raise PlanError(f"`plan.slots` has {len(plan.slots)} slots; expected {self.n_slots}")
        x = np.zeros((self.n_slots, self.n_fragments), dtype=bool)
        for t, sel in enumerate(plan.slots):
            if sel and sel[-1] >= self.n_fragments:
                raise PlanError(f"`plan.slots[{t}]` = {list(sel)!r}; expected fragments in 0..{self.n_fragments - 1}")
            x[t, list(sel)] = True
        return x

    def plan_of(self, x: Any) -> FragmentPlan:
        """The :class:`FragmentPlan` of a ``(T, F)`` 0/1 matrix."""
        x = np.asarray(x) > 0.5
        return FragmentPlan([np.flatnonzero(row).tolist() for row in x])

    def evaluate(self, plan: FragmentPlan) -> FragmentMetrics:
        """Value, bytes and transfer time per slot, and each fragment's fewest sends in a window."""
        x = self.matrix(plan)
        sent = x @ self.sizes_bytes
        nw = self.windows()
        if nw:
            c = np.concatenate([np.zeros((1, self.n_fragments)), np.cumsum(x, axis=0)])
            worst = (c[self.max_staleness:] - c[:nw]).min(axis=0)
        else:
            worst = np.full(self.n_fragments, np.inf)
        return FragmentMetrics(value=float((self.value * x).sum()), bytes_per_slot=sent,
                               transfer_s=sent / self.wan_bps, worst_window=worst)

    def objective(self, plan: FragmentPlan) -> float:
        """:math:`\\sum v_{tf} x_{tf}`."""
        return self.evaluate(plan).value

    def check(self, plan: FragmentPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Slot capacities and the staleness limit."""
        m = self.evaluate(plan)
        out = violations_le("bytes[{i}]", m.bytes_per_slot, self.capacity_bytes, tol)
        if self.windows():
            out += violations_ge("sends_per_window[{i}]", m.worst_window, 1.0, tol)
        return out

    def to_milp(self) -> tuple[Any, Any]:
        """The 0/1 program of the module docstring (every MILP backend solves it)."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)


def staleness_limit(value: Any) -> int | None:
    """``max_staleness`` from a generator parameter (0 means none)."""
    v = as_scalar("max_staleness", value, min_value=0.0)
    if v != int(v):
        raise ProblemDataError(f"`max_staleness` = {v}; expected a whole number of slots (0: no limit)")
    return None if v == 0 else int(v)


__all__ = ["FragmentMetrics", "FragmentPlan", "FragmentSync"]
