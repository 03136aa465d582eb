r"""A synchronous federated fine-tuning round: one configuration per device from its candidate set.

FedQuad (LoRA depth and activation-quantization layers, arXiv 2506.01001) and FedBE (trainable expanded
blocks, arXiv 2506.05977) both give each device a finite set of configurations, each with a measured or
modelled cost; what differs is what a configuration means (:mod:`edgeplan.formulations.finetune.candidates`
builds the tables). The model in our words, with what is reconstructed: ``docs/models/finetune.md``.

Model
-----
Device :math:`i = 1..N` has candidates :math:`c \in \mathcal C_i` (a padded table of :math:`K` columns;
``NaN`` step time marks a missing one) with step time :math:`t_{ic}` (s per local step), memory
:math:`m_{ic}` (bytes), upload :math:`U_{ic}` (bytes per round) and utility :math:`u_{ic} \ge 0` (training
progress per round). The device's round time and the synchronous round time are

.. math::

    T_{ic} = \tau_i\, t_{ic} + U_{ic} / r_i, \qquad
    T(x) = s_0 + \max\Big(\max_i T_{i c_i},\ \textstyle\sum_i U_{i c_i} / B\Big)

(``local_steps`` :math:`\tau_i`, ``uplink_bps`` :math:`r_i` in bytes/s, ``server_time_s`` :math:`s_0 > 0`:
aggregation and broadcast; ``server_bandwidth_bps`` :math:`B`: the server's ingress, which must receive every
upload within the round; ``inf``: no coupling). Constraints: :math:`m_{ic_i} \le M_i` (memory caps),
:math:`\sum_i w_i u_{ic_i} \ge \underline U` (``utility_floor``), and with a coverage table
:math:`a_{icj} \in \{0,1\}` (candidate :math:`c` trains block :math:`j`, FedBE) every block trained by at least
:math:`m_j` devices: :math:`\sum_i a_{ic_ij} \ge m_j`.

Objectives (``goal``):

* ``"rate"`` (default): maximise training progress per second, :math:`\sum_i w_i u_{ic_i} / T(x)`;
* ``"time"``: minimise :math:`T(x)` (the utility floor then says how much progress a round must make).

Without coverage and coupling the problem separates once :math:`T` is fixed: the threshold sweep of
``finetune-sweep`` is exact. With them, ``finetune-milp`` solves the one-hot MILP (Dinkelbach's parametric
form for the ratio).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le, within

GOALS = ("rate", "time")
#: Features of a round that the threshold sweep cannot take (:attr:`FineTuneRound.features`).
COVERAGE = "a coverage constraint"
SHARED_UPLINK = "a shared server bandwidth"


@dataclass(frozen=True, slots=True)
class FineTunePlan:
    """One configuration per device: ``choice[i]`` is a column of the problem's candidate table.

    Attributes
    ----------
    choice
        ``(N,)`` candidate index per device.
    """

    choice: Any

    def __post_init__(self) -> None:
        if isinstance(self.choice, str | bytes | Mapping) or self.choice is None:
            raise PlanError(f"`choice` = {self.choice!r}; expected one candidate index per device")
        object.__setattr__(self, "choice", int_vector("choice", self.choice, per="one candidate index per device"))

    def to_dict(self) -> dict[str, list[int]]:
        return {"choice": self.choice.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FineTunePlan:
        if not isinstance(data, Mapping) or set(data) != {"choice"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'choice'")
        return cls(choice=data["choice"])


@dataclass(frozen=True, slots=True)
class FineTuneMetrics:
    """``evaluate(plan)``: per-device costs of the chosen configurations and the round.

    Attributes
    ----------
    objective
        Progress per second (``goal="rate"``) or the round time (``goal="time"``).
    round_time_s
        :math:`T(x)`, including the server's time.
    utility
        :math:`\\sum_i w_i u_{ic_i}`.
    device_time_s, compute_time_s, upload_time_s
        Per device: :math:`T_{ic}`, :math:`\\tau_i t_{ic}` and :math:`U_{ic}/r_i`.
    memory_bytes, upload_bytes
        Per device: :math:`m_{ic}` and :math:`U_{ic}`.
    ingress_time_s
        :math:`\\sum_i U_{ic_i}/B` (0 without a shared server bandwidth).
    coverage
        ``(J,)`` devices training each block (empty without a coverage table).
    idle_s
        Per device, the time it waits for the straggler: :math:`T(x) - s_0 - T_{ic}`.
    """

    objective: float
    round_time_s: float
    utility: float
    device_time_s: np.ndarray
    compute_time_s: np.ndarray
    upload_time_s: np.ndarray
    memory_bytes: np.ndarray
    upload_bytes: np.ndarray
    ingress_time_s: float
    coverage: np.ndarray
    idle_s: np.ndarray


def _per_device(name: str, value: Any, n: int, **kw: Any) -> np.ndarray:
    if np.ndim(value) == 0 and not isinstance(value, str | bytes):
        value = np.full(n, value, dtype=float) if value is not None else value
    return as_array(name, value, shape=(n,), **kw)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class FineTuneRound:
    """One synchronous fine-tuning round over N devices, each choosing one candidate configuration.

    See the module docstring for the model.

    Parameters
    ----------
    step_time_s, memory_bytes, upload_bytes, utility
        ``(N, K)`` candidate tables: :math:`t_{ic}`, :math:`m_{ic}`, :math:`U_{ic}`, :math:`u_{ic} \\ge 0`.
        ``NaN`` step time marks a missing candidate (the other tables are then ignored there).
    memory_cap_bytes
        ``(N,)`` or scalar :math:`M_i` (``inf``: none).
    uplink_bps
        ``(N,)`` or scalar :math:`r_i`, bytes per second (> 0; ``inf``: uploads are free).
    local_steps
        ``(N,)`` or scalar :math:`\\tau_i \\ge 0`, local steps per round.
    weights
        ``(N,)`` :math:`w_i \\ge 0` (e.g. data shares); default 1.
    server_time_s
        :math:`s_0 > 0`: the server's aggregation and broadcast (keeps the ratio finite).
    server_bandwidth_bps
        :math:`B` (bytes/s) shared by the uploads; ``inf``: no coupling.
    goal
        ``"rate"`` or ``"time"``.
    utility_floor
        :math:`\\underline U`; ``-inf``: none.
    coverage, min_coverage
        ``(N, K, J)`` 0/1 table :math:`a_{icj}` and ``(J,)`` or scalar :math:`m_j`; ``None``: no coverage rows.
    config, config_fields
        ``(N, K, F)`` integers describing each candidate (e.g. LoRA depth, quantized layers, bit width) and
        the names of the F fields; what plan exports and the depth-based baselines read.
    model
        The real model the tables were measured on, as ``"<zoo name>:<size>"`` (e.g. ``"gpt2:small"``; empty:
        none): what the validator executes and the ``peft`` export targets.
    time_scale
        ``(N,)`` device step time over host step time (the validator compares measured host steps with
        ``step_time_s / time_scale``); default 1.
    name
        A label.
    """

    step_time_s: Any
    memory_bytes: Any
    upload_bytes: Any
    utility: Any
    memory_cap_bytes: Any = np.inf
    uplink_bps: Any = np.inf
    local_steps: Any = 1.0
    weights: Any = None
    server_time_s: float = 1e-3
    server_bandwidth_bps: float = np.inf
    goal: str = "rate"
    utility_floor: float = -np.inf
    coverage: Any = None
    min_coverage: Any = 1
    config: Any = None
    config_fields: tuple[str, ...] = ()
    model: str = ""
    time_scale: Any = None
    name: str = "finetune"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = as_array("step_time_s", self.step_time_s, shape=(None, None), finite=False)
        n, k = t.shape
        if n < 1 or k < 1:
            raise ProblemDataError(f"`step_time_s` has shape {t.shape}; expected (N, K) with N >= 1 devices and "
                                   "K >= 1 candidates")
        avail = ~np.isnan(t)
        if np.isinf(t).any() or (t[avail] < 0).any():
            i = tuple(np.argwhere(np.isinf(t) | (avail & (np.nan_to_num(t) < 0)))[0].tolist())
            raise ProblemDataError(f"`step_time_s`[{i[0]}, {i[1]}] = {t[i]!r}; expected a time >= 0 (NaN: no "
                                   "candidate)")
        tables = {"step_time_s": np.where(avail, t, 0.0)}
        for key in ("memory_bytes", "upload_bytes", "utility"):
            arr = as_array(key, self._masked(getattr(self, key), avail, key), shape=(n, k), min_value=0.0)
            tables[key] = arr
        caps = {
            "memory_cap_bytes": _per_device("memory_cap_bytes", self.memory_cap_bytes, n, allow_inf=True,
                                            min_value=0.0),
            "uplink_bps": _per_device("uplink_bps", self.uplink_bps, n, allow_inf=True, min_value=0.0,
                                      strict_min=True),
            "local_steps": _per_device("local_steps", self.local_steps, n, min_value=0.0),
            "weights": _per_device("weights", 1.0 if self.weights is None else self.weights, n, min_value=0.0),
        }
        s0 = as_scalar("server_time_s", self.server_time_s, min_value=0.0, strict_min=True)
        bw = self.server_bandwidth_bps
        if not (isinstance(bw, float | int) and not isinstance(bw, bool) and bw == np.inf):
            bw = as_scalar("server_bandwidth_bps", bw, min_value=0.0, strict_min=True)
        one_of("goal", self.goal, GOALS)
        floor = self.utility_floor
        if not (isinstance(floor, float | int) and not isinstance(floor, bool) and floor == -np.inf):
            floor = as_scalar("utility_floor", floor)
        cov, mcov = self.coverage, self.min_coverage
        if cov is not None:
            cov = as_array("coverage", cov, shape=(n, k, None), dtype=bool)
            if cov.shape[2] < 1:
                raise ProblemDataError("`coverage` has no blocks (shape (N, K, 0)); expected J >= 1 or None")
            cov = cov & avail[:, :, None]
            mcov = as_array("min_coverage", np.broadcast_to(np.asarray(mcov), (cov.shape[2],))
                            if np.ndim(mcov) == 0 else mcov, shape=(cov.shape[2],), dtype=int, min_value=0)
        cfg = self.config
        if cfg is not None:
            cfg = as_array("config", cfg, shape=(n, k, None), dtype=np.int64)
            fields = tuple(self.config_fields)
            if len(fields) != cfg.shape[2] or not all(isinstance(f, str) and f for f in fields):
                raise ProblemDataError(f"`config_fields` = {self.config_fields!r}; expected {cfg.shape[2]} names, "
                                       "one per column of `config`")
            object.__setattr__(self, "config_fields", fields)
        elif self.config_fields:
            raise ProblemDataError(f"`config_fields` = {self.config_fields!r} without a `config` table; expected ()")
        scale = _per_device("time_scale", 1.0 if self.time_scale is None else self.time_scale, n, min_value=0.0,
                            strict_min=True)
        if not isinstance(self.model, str):
            raise ProblemDataError(f"`model` = {self.model!r}; expected a string such as 'gpt2:small' (or '')")
        object.__setattr__(self, "time_scale", scale)
        avail = np.ascontiguousarray(avail)
        avail.setflags(write=False)
        for key, value in (*tables.items(), *caps.items(), ("server_time_s", s0), ("server_bandwidth_bps", float(bw)),
                           ("utility_floor", float(floor)), ("coverage", cov), ("min_coverage", mcov),
                           ("config", cfg)):
            object.__setattr__(self, key, value)
        self._cache["available"] = avail

    @staticmethod
    def _masked(value: Any, avail: np.ndarray, name: str) -> Any:
        """Missing candidates' entries may hold anything numeric (NaN included): they are set to 0."""
        try:
            arr = np.array(value, dtype=float)
        except (TypeError, ValueError):
            return value  # as_array names the field and the value
        if arr.shape != avail.shape:
            return value
        return np.where(avail, arr, 0.0)

    # -- sizes and tables ----------------------------------------------------------------------------
    @property
    def sense(self) -> str:
        return "max" if self.goal == "rate" else "min"

    @property
    def n_devices(self) -> int:
        return int(self.step_time_s.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.step_time_s.shape[1])

    @property
    def n_blocks(self) -> int:
        return 0 if self.coverage is None else int(self.coverage.shape[2])

    @property
    def available(self) -> np.ndarray:
        """``(N, K)``: the candidate exists."""
        return self._cache["available"]

    @property
    def features(self) -> frozenset[str]:
        out = set()
        if self.coverage is not None and (self.min_coverage > 0).any():
            out.add(COVERAGE)
        if np.isfinite(self.server_bandwidth_bps):
            out.add(SHARED_UPLINK)
        return frozenset(out)

    def device_time_table(self) -> np.ndarray:
        """``(N, K)``: :math:`T_{ic} = \\tau_i t_{ic} + U_{ic}/r_i` (``inf`` where the candidate is missing)."""
        if "device_time" not in self._cache:
            with np.errstate(invalid="ignore"):
                up = np.where(self.upload_bytes > 0, self.upload_bytes / self.uplink_bps[:, None], 0.0)
            t = self.local_steps[:, None] * self.step_time_s + up
            t = np.where(self.available, t, np.inf)
            t.setflags(write=False)
            self._cache["device_time"] = t
        return self._cache["device_time"]

    def allowed(self) -> np.ndarray:
        """``(N, K)``: the candidate exists and fits the device's memory (:func:`within` ``check``'s slack)."""
        if "allowed" not in self._cache:
            ok = self.available & within(self.memory_bytes, self.memory_cap_bytes[:, None])
            ok.setflags(write=False)
            self._cache["allowed"] = ok
        return self._cache["allowed"]

    def weighted_utility(self) -> np.ndarray:
        """``(N, K)``: :math:`w_i u_{ic}`."""
        return self.weights[:, None] * self.utility

    def describe(self, i: int, c: int) -> dict[str, int]:
        """Candidate ``c`` of device ``i`` as ``{field: value}`` (empty without a ``config`` table)."""
        if self.config is None:
            return {}
        return {f: int(v) for f, v in zip(self.config_fields, self.config[i, c], strict=True)}

    def field_index(self, name: str) -> int | None:
        """Column of ``config`` named ``name`` (None when absent)."""
        return self.config_fields.index(name) if name in self.config_fields else None

    # -- the protocol ----------------------------------------------------------------------------
    def decode_plan(self, plan: Any) -> np.ndarray:
        """The plan's ``(N,)`` choices, checked against the table (type, length, range, existence)."""
        if not isinstance(plan, FineTunePlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a FineTunePlan")
        c = plan.choice
        if c.shape != (self.n_devices,):
            raise PlanError(f"`plan.choice` has {c.size} entries; expected one per device ({self.n_devices})")
        bad = (c < 0) | (c >= self.n_candidates)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PlanError(f"`plan.choice`[{i}] = {int(c[i])}; expected a candidate index in "
                            f"0..{self.n_candidates - 1}")
        missing = ~self.available[np.arange(self.n_devices), c]
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise PlanError(f"`plan.choice`[{i}] = {int(c[i])} is not a candidate of device {i} (its step time is NaN)")
        return c

    def round_time(self, device_time: np.ndarray, upload: np.ndarray) -> tuple[float, float]:
        """``(T, ingress)`` from per-device times and uploads."""
        ingress = float(upload.sum() / self.server_bandwidth_bps) if np.isfinite(self.server_bandwidth_bps) else 0.0
        return self.server_time_s + max(float(device_time.max()), ingress), ingress

    def evaluate(self, plan: FineTunePlan) -> FineTuneMetrics:
        """Per-device times, memory and uploads of the chosen configurations; the round time and utility."""
        c = self.decode_plan(plan)
        rows = np.arange(self.n_devices)
        comp = self.local_steps * self.step_time_s[rows, c]
        upload = self.upload_bytes[rows, c]
        with np.errstate(invalid="ignore"):
            up_t = np.where(upload > 0, upload / self.uplink_bps, 0.0)
        dev = comp + up_t
        T, ingress = self.round_time(dev, upload)
        util = float(self.weighted_utility()[rows, c].sum())
        cov = (self.coverage[rows, c].sum(axis=0) if self.coverage is not None else np.zeros(0, dtype=int))
        obj = util / T if self.goal == "rate" else T
        return FineTuneMetrics(objective=obj, round_time_s=T, utility=util, device_time_s=dev, compute_time_s=comp,
                               upload_time_s=up_t, memory_bytes=self.memory_bytes[rows, c], upload_bytes=upload,
                               ingress_time_s=ingress, coverage=np.asarray(cov), idle_s=T - self.server_time_s - dev)

    def objective(self, plan: FineTunePlan) -> float:
        """:math:`\\sum_i w_i u_{ic_i} / T(x)` (``goal="rate"``) or :math:`T(x)` (``goal="time"``)."""
        return self.evaluate(plan).objective

    def check(self, plan: FineTunePlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Memory caps, the utility floor and block coverage."""
        m = self.evaluate(plan)
        out = violations_le("device[{i}].memory_bytes", m.memory_bytes, self.memory_cap_bytes, tol)
        if np.isfinite(self.utility_floor):
            out += violations_ge(["utility"], [m.utility], [self.utility_floor], tol)
        if self.coverage is not None:
            out += violations_ge("block[{i}].devices", m.coverage.astype(float), self.min_coverage.astype(float), tol)
        return out


__all__ = ["COVERAGE", "GOALS", "SHARED_UPLINK", "FineTuneMetrics", "FineTunePlan", "FineTuneRound"]
