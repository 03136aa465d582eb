"""Seeded SLIDE instances: the scenario family ``"slide"``."""

from __future__ import annotations

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.profiles.links import draw_rayleigh_power, path_loss_macro_db
from edgeplan.registry import generator


@generator("slide", tiny=({"n_users": 3, "n_models": 2}, {"n_users": 4, "n_models": 1, "n_layers": 3}),
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


__all__ = ["random_instance"]
