r"""SLIDE: provision models to users who download them layer by layer while inferring.

Qu, Li, Chen, Chen, Zhou, "SLIDE: Simultaneous model downLoading and Inference at the wireless eDgE",
arXiv 2512.20946 v2 (IEEE TMC 2026). The model in our words, with what is reconstructed: ``docs/models/slide.md``.

Model
-----
A base station with bandwidth :math:`B` (Hz) and transmit PSD :math:`P` (W/Hz) streams models to users
:math:`k = 1..K` over OFDMA shares :math:`y_k \in [0, 1]`, :math:`\sum_k y_k \le 1`. User :math:`k`'s
spectral efficiency is :math:`R_k = \log_2(1 + P\gamma_k/N_0)` (bit/s/Hz), so its rate :math:`y_k B R_k` is
linear in its share. Model :math:`i` is an ordered list of layers with :math:`S_{i,l}` bits and :math:`W_{i,l}`
FLOPs per sample. For user :math:`k` running model :math:`i` with per-layer clock scalings :math:`z_l \in (0, 1]`:

.. math::

    D_l &= \frac{\sum_{l' \le l} S_{l'}}{y_k B R_k}
        &&\text{(layer } l \text{ fully downloaded)}\\
    C_l &= V_{k,l} + \frac{\Gamma_{k,l}}{z_l},\quad \Gamma_{k,l} = \frac{b_k W_l \kappa_k}{f_k},
        \quad V_{k,l} = \frac{S_l}{h_k}
        &&\text{(copy to the GPU, then compute)}\\
    t_0 &= T^{0}_{k,i},\qquad t_l = \max(D_l,\ t_{l-1}) + C_l
        &&\text{(SLIDE's recursion, eq. 6)}\\
    e_{k,i} &= e^{0}_{k,i} + \Psi_k f_k^3 \sum_l \Gamma_{k,l} z_l^2
        &&\text{(eq. 7: power } \Psi f^3 \text{ over } \Gamma/z \text{ seconds)}

with batch size :math:`b_k`, cycles per FLOP :math:`\kappa_k`, maximum clock :math:`f_k`, host-to-GPU copy rate
:math:`h_k` (bit/s), setup time :math:`T^0_{k,i}` (input to the GPU, model instantiation; it overlaps the
download of layer 1) and setup energy :math:`e^0_{k,i}`. Problem P1 maximises the number of users provisioned
a model :math:`i \in I_k` that meets both the deadline :math:`t_{L_i} \le \bar T_k` and the energy budget
:math:`e_{k,i} \le Q_k`:

.. math::

    \max_{x, y, z}\ \sum_{k,i} x_{k,i}\quad\text{s.t.}\quad \sum_i x_{k,i} \le 1,\ \ \sum_k y_k \le 1,\ \
    x_{k,i} = 1 \Rightarrow t_{L_i}(y_k, z) \le \bar T_k \text{ and } e_{k,i}(z) \le Q_k .

A plan (:class:`SlidePlan`) lists the model of every user (``-1``: not served), the bandwidth shares and the
clock scalings of the served users' layers. ``objective`` counts the served users; ``check`` reports every
broken constraint, including a served user who misses the deadline or the budget (constraint 10c).

Choices where the paper is silent (listed in ``docs/models/slide.md``)
-----------------------------------------------------------
* :math:`V_{k,l} = S_l / h_k` (the paper: "approximately the layer size over the host-to-GPU bandwidth");
  ``copy_bits_per_s = inf`` drops it.
* Download-then-infer (DAI) latency, reported by :meth:`SlideProvisioning.evaluate` for comparison:
  :math:`D_L + T^0 + \sum_l C_l` (instantiation waits for the whole model).
* :func:`random_instance` draws tiny synthetic instances for tests: 3GPP macro path loss
  :math:`128.1 + 37.6\log_{10} d_{\rm km}` dB, Rayleigh fading, :math:`N_0 = -174` dBm/Hz,
  :math:`P = -29` dBm/Hz (the paper's PSD); the other ranges are ours and are stated in its docstring.

The PSD-based spectral efficiency is :func:`edgeplan.profiles.links.spectral_efficiency`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le
from edgeplan.formulations.milp import MILP
from edgeplan.profiles.links import dbm_to_watts, spectral_efficiency

#: The paper's BS transmit PSD (3GPP TS 38.104), dBm/Hz.
PAPER_PSD_DBM_PER_HZ = -29.0
#: Thermal noise PSD (the paper does not state N0), dBm/Hz.
NOISE_PSD_DBM_PER_HZ = -174.0


def _int_indices(name: str, value: Any, size: int) -> np.ndarray:
    return int_vector(name, value, size, per="one entry per user")


@dataclass(frozen=True, slots=True, eq=False)
class SlidePlan:
    """A SLIDE allocation.

    Attributes
    ----------
    model
        ``(K,)`` index of the model provisioned to each user, ``-1`` when the user is not served.
    bandwidth_share
        ``(K,)`` fractions :math:`y_k` of the base station's bandwidth.
    clock_scale
        ``K`` arrays: the clock scalings :math:`z_{k,l} \\in [0, 1]` of user ``k``'s layers (length
        :math:`L_i` of its model; empty when the user is not served).
    """

    model: np.ndarray
    bandwidth_share: np.ndarray
    clock_scale: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        model = _int_indices("model", self.model, len(np.atleast_1d(np.asarray(self.model))))
        k = model.shape[0]
        try:
            y = np.array(self.bandwidth_share, dtype=float)
            z = tuple(np.array(c, dtype=float).reshape(-1) for c in self.clock_scale)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"`bandwidth_share` or `clock_scale` is not numeric: {exc}") from exc
        if y.shape != (k,):
            raise PlanError(f"`bandwidth_share` has shape {y.shape}; expected ({k},) to match `model`")
        if len(z) != k:
            raise PlanError(f"`clock_scale` has {len(z)} entries; expected {k}, one per user")
        for arr in (model, y, *z):
            arr.setflags(write=False)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "bandwidth_share", y)
        object.__setattr__(self, "clock_scale", z)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SlidePlan) and np.array_equal(self.model, other.model)
                and np.array_equal(self.bandwidth_share, other.bandwidth_share)
                and len(self.clock_scale) == len(other.clock_scale)
                and all(np.array_equal(a, b) for a, b in zip(self.clock_scale, other.clock_scale, strict=True)))

    __hash__ = None  # type: ignore[assignment]

    @property
    def served(self) -> np.ndarray:
        """``(K,)`` bool: users provisioned a model."""
        return self.model >= 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (read back by :meth:`from_dict`)."""
        return {"family": "slide", "model": self.model.tolist(), "bandwidth_share": self.bandwidth_share.tolist(),
                "clock_scale": [c.tolist() for c in self.clock_scale]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlidePlan:
        """The plan written by :meth:`to_dict`."""
        missing = {"model", "bandwidth_share", "clock_scale"} - set(data)
        if missing:
            raise PlanError(f"SLIDE plan mapping lacks keys {sorted(missing)}; expected model, bandwidth_share, "
                            "clock_scale")
        return cls(np.asarray(data["model"]), np.asarray(data["bandwidth_share"], dtype=float),
                   tuple(np.asarray(c, dtype=float) for c in data["clock_scale"]))

    @classmethod
    def empty(cls, n_users: int) -> SlidePlan:
        """Nobody served, no bandwidth used (always feasible)."""
        return cls(np.full(n_users, -1), np.zeros(n_users), tuple(np.zeros(0) for _ in range(n_users)))


@dataclass(frozen=True, slots=True)
class SlideMetrics:
    """``SlideProvisioning.evaluate(plan)``; per-user arrays are ``(K,)`` (``nan`` for unserved users).

    Attributes
    ----------
    objective
        Users served.
    served
        Whether each user is served (its deadline and energy budget kept).
    latency_s, dai_latency_s
        Each user's latency with download-while-infer, and with download-then-infer (DAI) for comparison.
    energy_j, download_s, rate_bps
        Each user's energy, download time and downlink rate.
    bandwidth_used
        The share of the band the plan allocates.
    """

    objective: float
    served: np.ndarray
    latency_s: np.ndarray
    dai_latency_s: np.ndarray
    energy_j: np.ndarray
    download_s: np.ndarray
    rate_bps: np.ndarray
    bandwidth_used: float


def _per_user(name: str, value: Any, k: int, **kw: Any) -> np.ndarray:
    if np.ndim(value) == 0 and isinstance(value, int | float | np.integer | np.floating):
        value = np.full(k, float(value))
    return as_array(name, value, shape=(k,), **kw)


def _per_pair(name: str, value: Any, k: int, n: int, **kw: Any) -> np.ndarray:
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=float), (k, n))
    except ValueError as exc:
        raise ProblemDataError(f"`{name}` has shape {np.shape(value)}; expected a scalar or a shape that "
                               f"broadcasts to ({k}, {n}) (users, models)") from exc
    except TypeError as exc:
        raise ProblemDataError(f"`{name}` = {value!r} is not numeric; expected numbers") from exc
    return as_array(name, arr, shape=(k, n), **kw)


@dataclass(frozen=True, slots=True, eq=False)
class SlideProvisioning:
    """SLIDE's task-throughput maximisation P1 (see the module docstring for the math). Units are SI.

    Parameters
    ----------
    layer_bits, layer_flops
        One array per model: bits :math:`S_{i,l}` and FLOPs per sample :math:`W_{i,l}` of each layer, in order.
    channel_gain
        ``(K,)`` linear channel gains :math:`\\gamma_k` (> 0).
    deadline_s, energy_budget_j
        ``(K,)`` deadlines :math:`\\bar T_k` (> 0) and energy budgets :math:`Q_k` (>= 0); scalars broadcast.
    admissible
        ``(K, I)`` booleans: model ``i`` meets user ``k``'s accuracy requirement (:math:`i \\in I_k`).
    clock_hz, cycles_per_flop, power_coeff
        ``(K,)`` maximum GPU clock :math:`f_k` (Hz), cycles per FLOP :math:`\\kappa_k`, power coefficient
        :math:`\\Psi_k` in W/Hz^3 (power :math:`\\Psi f^3`).
    batch_size
        ``(K,)`` samples per request :math:`b_k` (default 1).
    copy_bits_per_s
        ``(K,)`` host-to-GPU copy rate :math:`h_k` in bit/s (default ``inf``: no copy time).
    setup_time_s, setup_energy_j
        Broadcast to ``(K, I)``: constant time :math:`T^0_{k,i}` and energy :math:`e^0_{k,i}` of input transfer
        and model instantiation.
    bandwidth_hz, tx_psd_w_per_hz, noise_psd_w_per_hz
        Total bandwidth :math:`B`, transmit PSD :math:`P` and noise PSD :math:`N_0`.
    model_names
        Optional labels of the ``I`` models.
    """

    layer_bits: Sequence[Any]
    layer_flops: Sequence[Any]
    channel_gain: Any
    deadline_s: Any
    energy_budget_j: Any
    admissible: Any
    clock_hz: Any
    cycles_per_flop: Any
    power_coeff: Any
    batch_size: Any = 1.0
    copy_bits_per_s: Any = math.inf
    setup_time_s: Any = 0.0
    setup_energy_j: Any = 0.0
    bandwidth_hz: float = 400e6
    tx_psd_w_per_hz: float = float(dbm_to_watts(PAPER_PSD_DBM_PER_HZ))
    noise_psd_w_per_hz: float = float(dbm_to_watts(NOISE_PSD_DBM_PER_HZ))
    model_names: Sequence[str] | None = None
    name: str = "slide"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    sense: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        if isinstance(self.layer_bits, np.ndarray | str) or not isinstance(self.layer_bits, Sequence):
            raise ProblemDataError(f"`layer_bits` is a {type(self.layer_bits).__name__}; expected a sequence of "
                                   "per-layer arrays, one per model")
        n_models = len(self.layer_bits)
        if n_models == 0:
            raise ProblemDataError("`layer_bits` is empty; expected at least one model")
        if isinstance(self.layer_flops, np.ndarray | str) or len(self.layer_flops) != n_models:
            raise ProblemDataError(f"`layer_flops` has {len(self.layer_flops)} entries; expected {n_models}, one per "
                                   "model of `layer_bits`")
        bits, flops = [], []
        for i, (s, w) in enumerate(zip(self.layer_bits, self.layer_flops, strict=True)):
            s_arr = as_array(f"layer_bits[{i}]", s, shape=(None,), min_value=0.0)
            w_arr = as_array(f"layer_flops[{i}]", w, shape=(None,), min_value=0.0)
            if s_arr.size == 0:
                raise ProblemDataError(f"`layer_bits[{i}]` has 0 layers; expected at least one layer")
            if w_arr.size != s_arr.size:
                raise ProblemDataError(f"`layer_flops[{i}]` has {w_arr.size} layers; expected {s_arr.size} to match "
                                       f"`layer_bits[{i}]`")
            if s_arr.sum() <= 0:
                raise ProblemDataError(f"`layer_bits[{i}]` sums to 0; expected a model with a positive size")
            bits.append(s_arr)
            flops.append(w_arr)
        gain = as_array("channel_gain", np.atleast_1d(np.asarray(self.channel_gain, dtype=float)), shape=(None,),
                        min_value=0.0, strict_min=True)
        k = gain.shape[0]
        if k == 0:
            raise ProblemDataError("`channel_gain` is empty; expected at least one user")
        adm_raw = np.asarray(self.admissible)
        if adm_raw.shape != (k, n_models):
            raise ProblemDataError(f"`admissible` has shape {adm_raw.shape}; expected ({k}, {n_models}) "
                                   "(users, models)")
        if adm_raw.dtype != bool:
            adm_f = as_array("admissible", adm_raw, shape=(k, n_models))
            odd = adm_f[~np.isin(adm_f, (0.0, 1.0))]
            if odd.size:
                raise ProblemDataError(f"`admissible` has entries {sorted(set(odd.tolist()))[:3]}; expected booleans "
                                       "(or 0/1)")
            adm_raw = adm_f.astype(bool)
        adm = adm_raw.copy()
        adm.setflags(write=False)
        sets = {
            "channel_gain": gain,
            "layer_bits": tuple(bits),
            "layer_flops": tuple(flops),
            "admissible": adm,
            "deadline_s": _per_user("deadline_s", self.deadline_s, k, min_value=0.0, strict_min=True),
            "energy_budget_j": _per_user("energy_budget_j", self.energy_budget_j, k, min_value=0.0),
            "clock_hz": _per_user("clock_hz", self.clock_hz, k, min_value=0.0, strict_min=True),
            "cycles_per_flop": _per_user("cycles_per_flop", self.cycles_per_flop, k, min_value=0.0),
            "power_coeff": _per_user("power_coeff", self.power_coeff, k, min_value=0.0),
            "batch_size": _per_user("batch_size", self.batch_size, k, min_value=0.0, strict_min=True),
            "copy_bits_per_s": _per_user("copy_bits_per_s", self.copy_bits_per_s, k, min_value=0.0,
                                         strict_min=True, allow_inf=True),
            "setup_time_s": _per_pair("setup_time_s", self.setup_time_s, k, n_models, min_value=0.0),
            "setup_energy_j": _per_pair("setup_energy_j", self.setup_energy_j, k, n_models, min_value=0.0),
            "bandwidth_hz": as_scalar("bandwidth_hz", self.bandwidth_hz, min_value=0.0, strict_min=True),
            "tx_psd_w_per_hz": as_scalar("tx_psd_w_per_hz", self.tx_psd_w_per_hz, min_value=0.0, strict_min=True),
            "noise_psd_w_per_hz": as_scalar("noise_psd_w_per_hz", self.noise_psd_w_per_hz, min_value=0.0,
                                            strict_min=True),
        }
        if self.model_names is not None:
            names = tuple(str(n) for n in self.model_names)
            if len(names) != n_models:
                raise ProblemDataError(f"`model_names` has {len(names)} names; expected {n_models}")
            sets["model_names"] = names
        for key, value in sets.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_model_profiles(cls, profiles: Sequence[Any], *, precisions: Sequence[str] = ("fp32",),
                            chain: bool = True, **fields: Any) -> SlideProvisioning:
        r"""A problem whose model library is every profile at every precision (profile-major).

        Each :class:`~edgeplan.profiles.model.ModelProfile` is cut into SLIDE's layers by ``to_chain()``
        (segments between articulation points: a residual block is one layer) unless ``chain=False``. A layer's
        size is its parameters at the precision plus its buffers as profiled, :math:`S_l = n_l \cdot
        \mathrm{bits}(d) + 8\,\mathrm{buffer\_bytes}_l` (the paper's assumption for quantised variants); its
        workload is the profile's forward FLOPs per sample. Models are named ``"<profile>-<precision>"``;
        ``fields`` are the other constructor arguments (``admissible`` has one column per model built).
        """
        from edgeplan.profiles.devices import DTYPE_BYTES
        from edgeplan.profiles.model import ModelProfile

        bits, flops, names = [], [], []
        for n, prof in enumerate(profiles):
            if not isinstance(prof, ModelProfile):
                raise ProblemDataError(f"`profiles`[{n}] is a {type(prof).__name__}; expected a ModelProfile")
            layers = prof.to_chain() if chain else prof
            for d in precisions:
                if d not in DTYPE_BYTES:
                    raise ProblemDataError(f"`precisions` has {d!r}; expected names from "
                                           + ", ".join(map(repr, DTYPE_BYTES)))
                bits.append(layers.num_params * 8.0 * DTYPE_BYTES[d] + 8.0 * layers.buffer_bytes)
                flops.append(np.asarray(layers.fwd_flops, dtype=float))
                names.append(f"{prof.name}-{d}")
        return cls(layer_bits=bits, layer_flops=flops, model_names=names, **fields)

    # -- sizes and derived data ---------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self.channel_gain.shape[0])

    @property
    def n_models(self) -> int:
        return len(self.layer_bits)

    @property
    def n_layers(self) -> np.ndarray:
        """``(I,)`` number of layers of each model."""
        return np.array([s.size for s in self.layer_bits])

    @property
    def model_bits(self) -> np.ndarray:
        """``(I,)`` total size of each model in bits."""
        return np.array([s.sum() for s in self.layer_bits])

    def _derived(self) -> dict[str, np.ndarray]:
        if not self._cache:
            lmax = int(self.n_layers.max())
            bits = np.zeros((self.n_models, lmax))
            flops = np.zeros((self.n_models, lmax))
            for i, (s, w) in enumerate(zip(self.layer_bits, self.layer_flops, strict=True)):
                bits[i, : s.size] = s
                flops[i, : w.size] = w
            se = spectral_efficiency(self.tx_psd_w_per_hz, self.channel_gain, self.noise_psd_w_per_hz)
            with np.errstate(divide="ignore", invalid="ignore"):
                budget = (self.energy_budget_j[:, None] - self.setup_energy_j) / (
                    self.power_coeff * self.clock_hz**3)[:, None]
            budget = np.where(self.power_coeff[:, None] == 0,
                              np.where(self.energy_budget_j[:, None] >= self.setup_energy_j, np.inf, -np.inf), budget)
            self._cache.update(
                bits=bits, flops=flops, spectral_efficiency=se, full_rate_bps=self.bandwidth_hz * se,
                seconds_per_flop=self.batch_size * self.cycles_per_flop / self.clock_hz,
                compute_budget_s=budget,
            )
        return self._cache

    @property
    def spectral_efficiency(self) -> np.ndarray:
        """``(K,)`` :math:`R_k = \\log_2(1 + P\\gamma_k/N_0)` in bit/s/Hz."""
        return self._derived()["spectral_efficiency"]

    @property
    def full_rate_bps(self) -> np.ndarray:
        """``(K,)`` rate :math:`B R_k` of user ``k`` holding the whole band, bit/s."""
        return self._derived()["full_rate_bps"]

    @property
    def compute_budget_s(self) -> np.ndarray:
        """``(K, I)`` :math:`Q'_{k,i} = (Q_k - e^0_{k,i})/(\\Psi_k f_k^3)`, the bound on
        :math:`\\sum_l \\Gamma_l z_l^2` (seconds)."""
        return self._derived()["compute_budget_s"]

    def pair_data(self, users: Any, models: Any) -> dict[str, np.ndarray]:
        """Padded per-layer data of the (user, model) pairs ``zip(users, models)``, shape ``(P, L_max)``.

        Keys: ``bits`` :math:`S_l`, ``cum_bits``, ``work_s`` :math:`\\Gamma_{k,l}` (compute seconds at full
        clock), ``copy_s`` :math:`V_{k,l}`, ``n_layers``; and ``(P,)`` arrays ``full_rate_bps``, ``setup_s``,
        ``deadline_s``, ``budget_s`` (:math:`Q'`). Layers past a model's end are zero (they change nothing).
        """
        d = self._derived()
        users = np.asarray(users, dtype=np.int64)
        models = np.asarray(models, dtype=np.int64)
        bits = d["bits"][models]
        return {
            "bits": bits,
            "cum_bits": np.cumsum(bits, axis=1),
            "work_s": d["flops"][models] * d["seconds_per_flop"][users, None],
            "copy_s": bits / self.copy_bits_per_s[users, None],
            "n_layers": self.n_layers[models],
            "full_rate_bps": d["full_rate_bps"][users],
            "setup_s": self.setup_time_s[users, models],
            "deadline_s": self.deadline_s[users],
            "budget_s": d["compute_budget_s"][users, models],
        }

    # -- the formulation protocol -------------------------------------------------------------------------------
    def _parts(self, plan: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(plan, SlidePlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a SlidePlan")
        k = self.n_users
        if plan.model.shape != (k,):
            raise PlanError(f"`plan.model` has {plan.model.shape[0]} users; expected {k}")
        bad = (plan.model < -1) | (plan.model >= self.n_models)
        if bad.any():
            u = int(np.flatnonzero(bad)[0])
            raise PlanError(f"`plan.model`[{u}] = {int(plan.model[u])}; expected -1 (not served) or a model index "
                            f"below {self.n_models}")
        served = plan.served
        want = np.where(served, self.n_layers[np.maximum(plan.model, 0)], 0)
        got = np.array([c.size for c in plan.clock_scale])
        if (want != got).any():
            u = int(np.flatnonzero(want != got)[0])
            raise PlanError(f"`plan.clock_scale`[{u}] has {got[u]} entries; expected {want[u]} (the layers of model "
                            f"{int(plan.model[u])})" if served[u] else
                            f"`plan.clock_scale`[{u}] has {got[u]} entries; expected 0 for a user who is not served")
        users = np.flatnonzero(served)
        z = np.ones((users.size, max(int(self.n_layers.max()), 1)))
        for row, u in enumerate(users):
            z[row, : got[u]] = plan.clock_scale[u]
        return users, plan.model[users], z

    def evaluate(self, plan: SlidePlan) -> SlideMetrics:
        """Latency by the streamed recursion, DAI latency, energy and rate of every served user."""
        users, models, z = self._parts(plan)
        k = self.n_users
        y = plan.bandwidth_share
        rate = y * self.full_rate_bps
        out = {name: np.full(k, np.nan) for name in ("latency_s", "dai_latency_s", "energy_j", "download_s")}
        if users.size:
            pd = self.pair_data(users, models)
            with np.errstate(divide="ignore", invalid="ignore"):
                arrive = pd["cum_bits"] / rate[users, None]
                scaled = np.where(pd["work_s"] > 0, pd["work_s"] / z, 0.0)
            compute = pd["copy_s"] + scaled
            t = pd["setup_s"].copy()
            for j in range(arrive.shape[1]):  # t_l = max(D_l, t_{l-1}) + C_l
                t = np.maximum(arrive[:, j], t) + compute[:, j]
            out["latency_s"][users] = t
            out["download_s"][users] = arrive[:, -1]
            out["dai_latency_s"][users] = arrive[:, -1] + pd["setup_s"] + compute.sum(axis=1)
            dyn = self.power_coeff[users] * self.clock_hz[users] ** 3 * np.sum(pd["work_s"] * z**2, axis=1)
            out["energy_j"][users] = self.setup_energy_j[users, models] + dyn
        served = plan.served.copy()
        return SlideMetrics(objective=float(served.sum()), served=served, rate_bps=rate,
                            bandwidth_used=float(y.sum()), **out)

    def objective(self, plan: SlidePlan) -> float:
        """Number of users provisioned a model (each must meet its deadline and budget: see :meth:`check`)."""
        self._parts(plan)
        return float(plan.served.sum())

    def check(self, plan: SlidePlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Every broken constraint: shares in [0, 1] summing to <= 1, clocks in [0, 1], admissible models, and
        each served user's deadline and energy budget."""
        m = self.evaluate(plan)
        users, models, _ = self._parts(plan)
        y = plan.bandwidth_share
        out = violations_ge("bandwidth_share[{i}]", y, 0.0, tol) + violations_le("bandwidth_share[{i}]", y, 1.0, tol)
        out += violations_le(["sum(bandwidth_share)"], [y.sum()], [1.0], tol)
        if not np.isfinite(y).all():
            u = int(np.flatnonzero(~np.isfinite(y))[0])
            out.append(Violation(f"bandwidth_share[{u}]", float(y[u]), 1.0, "finite"))
        for u, i in zip(users, models, strict=True):
            if not self.admissible[u, i]:
                out.append(Violation(f"admissible[{u}, {i}] (model {i} for user {u})", 0.0, 1.0, ">="))
            z = plan.clock_scale[u]
            out += violations_ge(f"clock_scale[{u}][{{i}}]", z, 0.0, tol)
            out += violations_le(f"clock_scale[{u}][{{i}}]", z, 1.0, tol)
        if users.size:
            lat = np.where(np.isnan(m.latency_s[users]), np.inf, m.latency_s[users])
            out += violations_le([f"latency_s[{u}]" for u in users], lat, self.deadline_s[users], tol)
            out += violations_le([f"energy_j[{u}]" for u in users], m.energy_j[users], self.energy_budget_j[users],
                                 tol)
        return out

    def __repr__(self) -> str:
        return (f"SlideProvisioning(name={self.name!r}, n_users={self.n_users}, n_models={self.n_models}, "
                f"max_layers={int(self.n_layers.max())}, bandwidth_hz={self.bandwidth_hz:.4g})")


# -- the admission step as a one-row MILP ---------------------------------------------------------------------
def admission_milp(min_share: Any) -> tuple[MILP, Any]:
    r"""The admission step (Alg. 2) as a MILP, given each user's minimum feasible bandwidth share.

    .. math:: \max_u \sum_k u_k \quad\text{s.t.}\quad \sum_k \check y_k u_k \le 1,\quad u \in \{0, 1\}^K,

    with users whose :math:`\check y_k` is infinite (infeasible at any share) fixed to 0. Returns the
    :class:`~edgeplan.formulations.milp.MILP` and a decoder ``x -> (K,) bool`` of admitted users. Any MILP
    backend solves it (``solve(milp, "highs")``); the sorted greedy of Alg. 2 solves it exactly.
    """
    y = as_array("min_share", np.atleast_1d(np.asarray(min_share, dtype=float)), shape=(None,), min_value=0.0,
                 allow_inf=True)
    finite = np.isfinite(y)
    milp = MILP(c=np.ones(y.size), A=np.where(finite, y, 0.0)[None, :], row_upper=1.0, col_upper=finite.astype(float),
                integrality=np.ones(y.size), sense="max", name="slide-admission")
    return milp, lambda x: np.asarray(x, dtype=float) > 0.5


__all__ = ["NOISE_PSD_DBM_PER_HZ", "PAPER_PSD_DBM_PER_HZ", "SlideMetrics", "SlidePlan", "SlideProvisioning",
           "admission_milp"]
