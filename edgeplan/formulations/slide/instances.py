"""Seeded SLIDE instances: the scenario family ``"slide"``."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.profiles.links import draw_rayleigh_power, path_loss_macro_db
from edgeplan.registry import generator


@generator("slide", cells=lambda n_users, n_models, n_layers, **_: 8 * n_users * n_models * np.max(n_layers),
           tiny=({"n_users": 3, "n_models": 2}, {"n_users": 4, "n_models": 1, "n_layers": 3}),
           demo=("SLIDE: download while inferring (users served)", {"n_users": 12, "n_models": 3},
                 ("slide", "dai", "eba", "gbmp", "eecra")))
def random_instance(
    n_users: int = 4,
    n_models: int = 2,
    n_layers: int | tuple[int, int] = (2, 5),
    *,
    seed: int | np.random.Generator | None = None,
    bandwidth_hz: float = 5e6,
    deadline_s: tuple[float, float] = (0.15, 0.45),
    budget_factor: tuple[float, float] = (0.1, 1.0),
    admissible_prob: float = 0.6,
) -> SlideProvisioning:
    r"""A small random SLIDE instance (for tests and examples; not the paper's setting).

    Draws, per user: distance :math:`\mathcal U(20, 200)` m with macro path loss and Rayleigh fading; clock
    :math:`\mathcal U(0.6, 0.95)` GHz; :math:`\kappa \sim \mathcal U(0.5, 2)\cdot 10^{-2}` cycles/FLOP;
    :math:`\Psi = \mathcal U(5, 15)\,\mathrm W / f^3`; copy rate :math:`\mathcal U(1, 8)` Gbit/s; deadline in
    ``deadline_s``; per model and layer :math:`\mathcal U(0.5, 4)` Mbit and :math:`\mathcal U(0.5, 4)` GFLOP;
    setup time :math:`\mathcal U(0, 20)` ms and energy :math:`\mathcal U(0, 0.05)` J; the energy budget is
    :math:`e^0` plus ``budget_factor`` (uniform) times the full-clock dynamic energy of the user's largest
    admissible model, so the budget binds for some users and not others. Each model is admissible with
    probability ``admissible_prob`` (at least one per user).
    """
    for name, v in (("n_users", n_users), ("n_models", n_models)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ProblemDataError(f"`{name}` = {v!r}; expected an integer >= 1")
    lo, hi = (n_layers, n_layers) if isinstance(n_layers, int | np.integer) else n_layers
    if not 1 <= lo <= hi:
        raise ProblemDataError(f"`n_layers` = {n_layers!r}; expected an integer >= 1 or a range (lo, hi) with "
                               "1 <= lo <= hi")
    rng = np.random.default_rng(seed)
    K, I = int(n_users), int(n_models)
    sizes = rng.integers(lo, hi + 1, size=I)
    bits = [rng.uniform(0.5e6, 4e6, size=s) for s in sizes]
    flops = [rng.uniform(0.5e9, 4e9, size=s) for s in sizes]
    dist = rng.uniform(20.0, 200.0, size=K)
    gain = 10.0 ** (-path_loss_macro_db(dist) / 10.0) * draw_rayleigh_power(K, seed=rng)
    gain = np.maximum(gain, 1e-30)
    clock = rng.uniform(0.6e9, 0.95e9, size=K)
    kappa = rng.uniform(0.5e-2, 2e-2, size=K)
    psi = rng.uniform(5.0, 15.0, size=K) / clock**3
    adm = rng.random((K, I)) < admissible_prob
    adm[np.arange(K), rng.integers(0, I, size=K)] = True
    setup_e = rng.uniform(0.0, 0.05, size=(K, I))
    full_e = psi[:, None] * clock[:, None] ** 2 * kappa[:, None] * np.array([w.sum() for w in flops])[None, :]
    top = np.max(np.where(adm, full_e, 0.0), axis=1)
    budget = np.max(np.where(adm, setup_e, 0.0), axis=1) + rng.uniform(*budget_factor, size=K) * top
    return SlideProvisioning(
        layer_bits=bits, layer_flops=flops, channel_gain=gain, deadline_s=rng.uniform(*deadline_s, size=K),
        energy_budget_j=budget, admissible=adm, clock_hz=clock, cycles_per_flop=kappa, power_coeff=psi,
        copy_bits_per_s=rng.uniform(1e9, 8e9, size=K), setup_time_s=rng.uniform(0.0, 0.02, size=(K, I)),
        setup_energy_j=setup_e, bandwidth_hz=bandwidth_hz, name=f"slide-random-{K}x{I}",
    )


#: Mean accuracy (%) of each architecture and the penalty (points) of each precision (our assumption).
BASE_ACCURACY = {"resnet18": 84.0, "resnet34": 87.0, "resnet50": 90.0, "deit_s": 92.0}
PRECISION_PENALTY = {"fp32": 0.0, "fp16": 0.3, "int8": 2.5}
#: Achieved fraction of the datasheet FP32 peak in the two compute regimes (see :func:`paper_instance`).
REGIMES = {"eager": 0.01, "datasheet": 0.4}
#: Setup time before a model's first layer can run (s).
SETUP_S = 0.05


@generator("slide-paper", cells=lambda n_users, n_tasks, **_: 64 * n_users * n_tasks,
           demo=("SLIDE in the paper's setting (K = 80, B = 400 MHz, T = 800 ms)", {},
                                ("slide", "dai", "eba", "gbmp", "eecra")))
def paper_instance(n_users: int = 80, *, bandwidth_hz: float = 400e6, deadline_s: float = 0.8, beta: float = 0.26,
                   nano_share: float = 0.6, regime: str = "eager", eta: float | None = None, n_tasks: int = 10,
                   seed: int | np.random.Generator | None = 0) -> SlideProvisioning:
    r"""The setting of the SLIDE paper's evaluation (Qu et al., arXiv 2512.20946, Sec. 6), scenario ``"slide-paper"``.

    From the paper: one BS, users uniform in a 200 m disc, 3GPP macro path loss and Rayleigh fading, transmit
    PSD -29 dBm/Hz and noise -174 dBm/Hz (the :class:`SlideProvisioning` defaults); ``n_users`` = 80,
    ``bandwidth_hz`` = 400 MHz, ``deadline_s`` = 0.8; energy budget ``beta`` = 26 % of :math:`P\cdot T` with
    :math:`P` = 5 W (Jetson Orin Nano, share ``nano_share`` = 60 %) or 10 W (Orin NX); a 48-model library:
    ResNet-18/34/50 and DeiT-S in fp32/fp16/int8 (per-layer payload bits and FLOPs measured on the torch models,
    shipped in ``slide-library.json``), four fine-tuned variants each.

    Our assumptions (the paper does not give them):

    * **Compute**: cycles per FLOP :math:`\kappa = f_{\max}/(\eta F_{
m fp32})` with the device profile's
      datasheet peak and an achieved fraction :math:`\eta`: ``regime="eager"`` (:math:`\eta` = 0.01: ResNet-18
      fp32 takes ~0.3 s on an Orin Nano, what the paper's Fig. 1 implies SLIDE hides behind a 0.7 s download) or
      ``"datasheet"`` (:math:`\eta` = 0.4: ~10 ms, little to overlap); ``eta`` overrides.
    * **Energy**: power coefficient :math:`\Psi = P/f_{\max}^3`; setup time :data:`SETUP_S` = 50 ms at idle
      power; GPU copy at the profile's host-to-device bandwidth.
    * **Tasks**: ``n_tasks`` = 10 task types, 4 candidate models each from the 48; accuracy = architecture base
      (84/87/90/92 %) - precision penalty (0/0.3/2.5 points) + N(0, 1); requirement U(80, 90) % (capped so that
      one candidate meets it); a user's admissible models are its task's candidates meeting the requirement.

    ``docs/models/slide.md`` tabulates which of the paper's figures this setting reproduces and which it cannot.
    """
    from edgeplan.profiles.links import draw_rayleigh_power, path_loss_macro_db
    from edgeplan.profiles.loading import load_slide_library

    if regime not in REGIMES:
        raise ProblemDataError(f"`regime` = {regime!r}; expected one of {', '.join(map(repr, REGIMES))}")
    if isinstance(n_users, bool) or not isinstance(n_users, int | np.integer) or n_users < 1:
        raise ProblemDataError(f"`n_users` = {n_users!r}; expected an integer >= 1")
    eff = REGIMES[regime] if eta is None else float(eta)
    lib = load_slide_library()["models"]
    rng = np.random.default_rng(seed)
    models = [(m, v) for v in range(4) for m in range(len(lib))]             # 48 = 12 x 4 variants
    candidates = [rng.choice(len(models), size=4, replace=False) for _ in range(n_tasks)]
    accuracy = np.full((n_tasks, len(models)), -np.inf)
    for t, cand in enumerate(candidates):
        for j in cand:
            m = lib[models[j][0]]
            accuracy[t, j] = BASE_ACCURACY[m["arch"]] - PRECISION_PENALTY[m["precision"]] + rng.normal(0.0, 1.0)
    requirement = np.minimum(rng.uniform(80.0, 90.0, size=n_tasks), accuracy.max(axis=1))
    task = rng.integers(0, n_tasks, size=n_users)
    admissible = accuracy[task] >= requirement[task, None]
    is_nano = rng.random(n_users) < nano_share
    dist = 200.0 * np.sqrt(rng.random(n_users))
    gain = 10.0 ** (-path_loss_macro_db(dist) / 10.0) * draw_rayleigh_power(n_users, seed=rng)
    return SlideProvisioning(
        layer_bits=[np.asarray(lib[m]["layer_bits"]) for m, _ in models],
        layer_flops=[np.asarray(lib[m]["layer_flops"]) for m, _ in models],
        channel_gain=np.maximum(gain, 1e-30), admissible=admissible, bandwidth_hz=bandwidth_hz,
        model_names=[f"{lib[m]['name']}-v{v}" for m, v in models], name=f"slide-paper-K{n_users}-{regime}",
        **paper_device_fields(is_nano, eta=eff, beta=beta, deadline_s=deadline_s))


def paper_device_fields(is_nano: np.ndarray, *, eta: float, beta: float, deadline_s: float) -> dict[str, Any]:
    """The per-user device fields of :func:`paper_instance` for Orin Nano (``is_nano``) and Orin NX users."""
    from edgeplan.profiles.loading import load_device

    nx, nano = load_device("jetson-orin-nx-16gb"), load_device("jetson-orin-nano-8gb")
    dev = [nano if b else nx for b in np.asarray(is_nano, dtype=bool)]
    p_max = np.where(is_nano, 5.0, 10.0)  # the paper's P: 5 W (Nano), 10 W (NX)
    clock = np.array([d.clock_max_hz for d in dev])
    idle = np.array([d.power.idle_w for d in dev])
    return {"deadline_s": deadline_s, "energy_budget_j": beta * p_max * deadline_s, "clock_hz": clock,
            "cycles_per_flop": np.array([d.clock_max_hz / (eta * d.peak("fp32")) for d in dev]),
            "power_coeff": p_max / clock**3,
            "copy_bits_per_s": np.array([8.0 * d.h2d_bandwidth_bytes_per_s for d in dev]),
            "setup_time_s": SETUP_S, "setup_energy_j": (idle * SETUP_S)[:, None]}


__all__ = ["BASE_ACCURACY", "PRECISION_PENALTY", "REGIMES", "SETUP_S", "paper_device_fields", "paper_instance",
           "random_instance"]
