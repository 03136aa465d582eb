r"""One Caesar round: each device's download ratio, upload ratio and batch size (discrete ratio levels).

Yan et al., "Caesar: A Low-deviation Compression Approach for Efficient Federated Learning", arXiv 2412.19989.
The decisions and the codecs are the paper's as a re-implementation reads them; the round model, the byte
counts and the budgets are ours (``docs/models/compression.md``).

Devices :math:`i = 1..n` download the global model and upload their update, a model with tensors of
:math:`n_t` entries. At ratio levels :math:`\theta_\ell` (:math:`\ell = 1..L`) the download takes
:math:`D_\ell` bytes and the upload :math:`U_\ell` (:mod:`~edgeplan.formulations.compression.wire`, exact byte
counts of the codecs). Device :math:`i` trains :math:`b_i \in [b_{min}, b_{max}]` samples at :math:`a_i`
seconds each, over links of :math:`r^d_i` and :math:`r^u_i` bytes/s:

.. math::

    M_i = D_{\ell^d_i} / r^d_i + a_i b_i + U_{\ell^u_i} / r^u_i, \qquad T = \max_i M_i .

Deviation: the upload loses the share :math:`\epsilon^u_{i\ell}` of device :math:`i`'s update (its measured
top-k profile); with importances :math:`C_i`, :math:`\sum_i C_i \epsilon^u_{i \ell^u_i} \le \Delta_u`. The
download recovers a model with relative error :math:`\epsilon^d_{i\ell}` (larger for staler devices), each at
most :math:`\epsilon_d`. Plus :math:`\sum_i b_i \ge S` and :math:`T \le L`. Minimise the traffic
:math:`\sum_i (D_{\ell^d_i} + U_{\ell^u_i})` or the round time :math:`T`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le
from edgeplan.formulations.compression.batch import _whole
from edgeplan.formulations.compression.wire import download_bytes, upload_bytes


@dataclass(frozen=True, slots=True)
class CompressionChoice:
    """Per device: download level, upload level and batch size.

    Attributes
    ----------
    down, up
        ``(n,)`` indices into the problem's ``levels``.
    batch
        ``(n,)`` :math:`b_i`.
    """

    down: Any
    up: Any
    batch: Any

    def __post_init__(self) -> None:
        down = int_vector("down", self.down, expected="level indices")
        up = int_vector("up", self.up, down.size, per="one level per device", expected="level indices")
        b = int_vector("batch", self.batch, down.size, per="one batch per device", expected="whole numbers")
        for key, v in (("down", down), ("up", up)):
            if v.size and v.min() < 0:
                raise PlanError(f"`{key}` = {v.tolist()!r}; expected level indices >= 0")
        object.__setattr__(self, "down", down)
        object.__setattr__(self, "up", up)
        object.__setattr__(self, "batch", b)

    def to_dict(self) -> dict[str, Any]:
        return {"down": self.down.tolist(), "up": self.up.tolist(), "batch": self.batch.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompressionChoice:
        if not isinstance(data, Mapping) or set(data) != {"down", "up", "batch"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the keys 'down', 'up' and 'batch'")
        return cls(down=data["down"], up=data["up"], batch=data["batch"])


@dataclass(frozen=True, slots=True)
class CompressionMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    traffic_bytes, round_s
        :math:`\\sum_i (D + U)` and :math:`T`.
    down_bytes, up_bytes, finish_s, idle_s
        ``(n,)`` per device.
    upload_deviation
        :math:`\\sum_i C_i \\epsilon^u_{i \\ell^u_i}`.
    download_error
        ``(n,)`` :math:`\\epsilon^d_{i \\ell^d_i}`.
    samples
        :math:`\\sum_i b_i`.
    """

    traffic_bytes: float
    round_s: float
    down_bytes: np.ndarray
    up_bytes: np.ndarray
    finish_s: np.ndarray
    idle_s: np.ndarray
    upload_deviation: float
    download_error: np.ndarray
    samples: float


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class CompressionRound:
    """A Caesar round with discrete ratio levels (the model is in the module docstring).

    Parameters
    ----------
    sizes
        ``(T,)`` entries of each model tensor.
    levels
        ``(L,)`` ratios :math:`\\theta_\\ell \\in [0, 1)`.
    download_bps, upload_bps
        ``(n,)`` :math:`r^d_i, r^u_i > 0`.
    per_sample_s
        ``(n,)`` :math:`a_i`.
    importance
        ``(n,)`` :math:`C_i`.
    upload_error, download_error
        ``(n, L)`` :math:`\\epsilon^u_{i\\ell}` and :math:`\\epsilon^d_{i\\ell}`.
    upload_budget, download_cap
        :math:`\\Delta_u` and :math:`\\epsilon_d` (``inf``: none).
    min_batch, max_batch, min_samples
        :math:`b_{min}, b_{max}, S`.
    round_bound_s
        :math:`L` (``inf``: none).
    goal
        ``"traffic"`` or ``"round_time"``.
    staleness, round_index
        ``(n,)`` rounds since each device last took part, and the current round (for Caesar's download rule).
    """

    sizes: Any
    levels: Any
    download_bps: Any
    upload_bps: Any
    per_sample_s: Any
    importance: Any
    upload_error: Any
    download_error: Any
    upload_budget: float = float("inf")
    download_cap: float = float("inf")
    min_batch: int = 1
    max_batch: int = 64
    min_samples: float = 0.0
    round_bound_s: float = float("inf")
    goal: str = "traffic"
    staleness: Any = None
    round_index: int = 1
    name: str = "compression-round"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        sizes = as_array("sizes", self.sizes, shape=(None,), dtype=np.int64, min_value=1)
        levels = as_array("levels", self.levels, shape=(None,), min_value=0.0)
        if sizes.size < 1 or levels.size < 1 or levels.max() >= 1.0:
            raise ProblemDataError(f"`sizes` = {sizes.tolist()!r}, `levels` = {levels.tolist()!r}; expected at least "
                                   "one tensor and one ratio, ratios below 1")
        rd = as_array("download_bps", self.download_bps, shape=(None,), min_value=0.0, strict_min=True)
        n = rd.size
        if n < 1:
            raise ProblemDataError("`download_bps` is empty; expected one value per device")
        L = levels.size

        def finite_or_inf(key: str, value: Any) -> float:
            return float("inf") if np.isposinf(float(value)) else float(as_scalar(key, value, min_value=0.0))

        lo = _whole("min_batch", self.min_batch, 1)
        fields = {
            "sizes": sizes, "levels": levels, "download_bps": rd,
            "upload_bps": as_array("upload_bps", self.upload_bps, shape=(n,), min_value=0.0, strict_min=True),
            "per_sample_s": as_array("per_sample_s", self.per_sample_s, shape=(n,), min_value=0.0),
            "importance": as_array("importance", self.importance, shape=(n,), min_value=0.0),
            "upload_error": as_array("upload_error", self.upload_error, shape=(n, L), min_value=0.0),
            "download_error": as_array("download_error", self.download_error, shape=(n, L), min_value=0.0),
            "upload_budget": finite_or_inf("upload_budget", self.upload_budget),
            "download_cap": finite_or_inf("download_cap", self.download_cap),
            "min_batch": lo, "max_batch": _whole("max_batch", self.max_batch, lo),
            "min_samples": float(as_scalar("min_samples", self.min_samples, min_value=0.0)),
            "round_bound_s": finite_or_inf("round_bound_s", self.round_bound_s),
            "goal": one_of("goal", self.goal, ("traffic", "round_time")),
            "staleness": as_array("staleness", np.zeros(n) if self.staleness is None else self.staleness,
                                  shape=(n,), min_value=0.0),
            "round_index": _whole("round_index", self.round_index, 1),
        }
        for key, val in fields.items():
            object.__setattr__(self, key, val)

    @property
    def n_devices(self) -> int:
        return int(self.download_bps.size)

    @property
    def level_bytes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(L,)`` :math:`D_\\ell` and :math:`U_\\ell`."""
        return download_bytes(self.levels, self.sizes), upload_bytes(self.levels, self.sizes)

    def _plan(self, plan: Any) -> CompressionChoice:
        if not isinstance(plan, CompressionChoice):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a CompressionChoice")
        if plan.down.size != self.n_devices:
            raise PlanError(f"`plan.down` has {plan.down.size} entries; expected {self.n_devices}")
        L = self.levels.size
        for key in ("down", "up"):
            v = getattr(plan, key)
            if v.max(initial=0) >= L:
                raise PlanError(f"`plan.{key}` = {v.tolist()!r}; expected level indices in 0..{L - 1}")
        return plan

    def evaluate(self, plan: CompressionChoice) -> CompressionMetrics:
        """Traffic, the round, each device's bytes, finish and idle time, and the deviations."""
        plan = self._plan(plan)
        D, U = self.level_bytes
        down, up = D[plan.down], U[plan.up]
        finish = down / self.download_bps + self.per_sample_s * plan.batch + up / self.upload_bps
        T = float(finish.max())
        rows = np.arange(self.n_devices)
        return CompressionMetrics(
            traffic_bytes=float(down.sum() + up.sum()), round_s=T, down_bytes=down, up_bytes=up, finish_s=finish,
            idle_s=T - finish, upload_deviation=float(self.importance @ self.upload_error[rows, plan.up]),
            download_error=self.download_error[rows, plan.down], samples=float(plan.batch.sum()))

    def objective(self, plan: CompressionChoice) -> float:
        """The traffic in bytes, or the round time in seconds (``goal``)."""
        m = self.evaluate(plan)
        return m.traffic_bytes if self.goal == "traffic" else m.round_s

    def check(self, plan: CompressionChoice, tol: float = FEAS_TOL) -> list[Violation]:
        """Batch limits, samples, the round bound, the upload budget and the download cap."""
        m = self.evaluate(plan)
        out = violations_ge("batch[{i}]", plan.batch, self.min_batch, tol)
        out += violations_le("batch[{i}]", plan.batch, self.max_batch, tol)
        out += violations_ge(["samples"], [m.samples], self.min_samples, tol)
        out += violations_le(["round_s"], [m.round_s], self.round_bound_s, tol)
        out += violations_le(["upload_deviation"], [m.upload_deviation], self.upload_budget, tol)
        out += violations_le("download_error[{i}]", m.download_error, self.download_cap, tol)
        return out

    def to_milp(self) -> tuple[Any, Any]:
        """The round as a MILP (:mod:`edgeplan.formulations.compression.milp`); every MILP backend solves it."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)

    def batch_problem(self, plan: CompressionChoice) -> Any:
        """The :class:`~edgeplan.formulations.compression.batch.BatchSizing` of ``plan``'s ratios."""
        from edgeplan.formulations.compression.batch import BatchSizing

        m = self.evaluate(plan)
        return BatchSizing(per_sample_s=self.per_sample_s, comm_s=m.finish_s - self.per_sample_s * plan.batch,
                           min_batch=self.min_batch, max_batch=self.max_batch, round_bound_s=self.round_bound_s,
                           name=f"{self.name}-batches")

    def upload_problem(self, plan: CompressionChoice, upload_error: Any) -> CompressionRound:
        r"""The upload levels alone, re-planned once the updates exist: ``plan``'s downloads and batches fixed,
        the upload profiles replaced by ``upload_error`` (measured on the updates), and the round bound set to
        ``plan``'s round time :math:`T`, so that the re-planned uploads never lengthen the round.

        Device :math:`i`'s download level is forced (its download error is 0 at ``plan.down[i]`` and 1 elsewhere,
        under a cap of 1/2) and its compute is fixed (one "sample" of :math:`a_i b_i` seconds, no samples floor), so
        a plan of the returned round differs from ``plan`` in its upload levels only; take those.

        Parameters
        ----------
        plan
            The plan made before training.
        upload_error
            ``(n, L)`` the upload profiles measured on the updates.
        """
        from dataclasses import replace

        m = self.evaluate(plan)
        rows = np.arange(self.n_devices)
        forced = np.ones_like(self.download_error)
        forced[rows, plan.down] = 0.0
        return replace(self, upload_error=upload_error, download_error=forced, download_cap=0.5,
                       per_sample_s=self.per_sample_s * plan.batch, min_batch=1, max_batch=1, min_samples=0.0,
                       round_bound_s=m.round_s, name=f"{self.name}-uploads")


__all__ = ["CompressionChoice", "CompressionMetrics", "CompressionRound"]
