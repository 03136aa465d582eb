r"""Seeded Caesar instances: ``"caesar-round"``, ``"upload-ratios"`` and ``"batch-sizing"``.

Devices are phones and Jetsons: downlinks of U(2, 20) MB/s, uplinks of U(0.5, 5) MB/s, U(2, 20) ms per sample for
each of 5 local iterations. Data: sample counts log-normal around 500, labels split by Dirichlet(0.5) over 10
classes; importance :math:`C_i = (n_i / \max_j n_j)\, e^{-KL(\phi_i \| \Phi_0)}` (:func:`caesar_importance`, our
reading of Caesar's gradient importance). Upload error profiles are the top-k profiles of heavy-tailed updates
(Student-t with U(2.5, 6) degrees of freedom, 20,000 draws per device); the download error of a device is the
same profile scaled by :math:`\min(1, 0.1 + 0.15 \delta_i)` for staleness :math:`\delta_i` (a stale local copy
recovers the compressed entries worse) -- a model; :mod:`edgeplan.validation.compression` measures both on real
tensors. The model is a small CNN of 1.09 M parameters.
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.compression.batch import BatchSizing
from edgeplan.formulations.compression.ratios import UploadRatios
from edgeplan.formulations.compression.round import CompressionRound
from edgeplan.formulations.compression.wire import topk_error_profile
from edgeplan.profiles.data import dirichlet_label_counts
from edgeplan.registry import generator

#: Entries of the small CNN's tensors (two conv layers, two linear layers, biases).
CNN_SIZES = (864, 32, 18_432, 64, 1_048_576, 256, 2_560, 10)
MB = 1e6


def caesar_importance(samples: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """:math:`C_i = (n_i / \\max_j n_j)\\, e^{-KL(\\phi_i \\| \\Phi_0)}` from sample counts and ``(n, M)`` label
    counts (the pooled labels are :math:`\\Phi_0`).

    Parameters
    ----------
    samples
        ``(n,)`` sample counts.
    labels
        ``(n, M)`` label counts.
    """
    labels = np.asarray(labels, dtype=float)
    phi = labels / labels.sum(axis=1, keepdims=True)
    ref = labels.sum(axis=0) / labels.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(phi > 0, phi * np.log(np.where(phi > 0, phi, 1.0) / ref), 0.0).sum(axis=1)
    return np.asarray(samples, dtype=float) / float(np.max(samples)) * np.exp(-np.maximum(kl, 0.0))


def _devices(n: int, rng: np.random.Generator, grid: np.ndarray) -> dict:
    samples = np.maximum(20, rng.lognormal(np.log(500), 0.6, n)).astype(int)
    labels = dirichlet_label_counts(np.full(10, 1000), n, 0.5, seed=rng) + 1
    profiles = np.array([topk_error_profile(rng.standard_t(rng.uniform(2.5, 6.0), 20_000), grid) for _ in range(n)])
    staleness = rng.geometric(0.4, n) - 1
    return {"importance": caesar_importance(samples, labels), "profiles": profiles, "staleness": staleness}


@generator("caesar-round", cells=lambda n_devices=20, **_: n_devices * 40,
           tiny=({"n_devices": 2, "levels": (0.0, 0.5, 0.9), "max_batch": 3, "min_batch": 1},
                 {"n_devices": 3, "levels": (0.0, 0.6), "max_batch": 2, "min_batch": 1, "goal": "round_time"},
                 {"n_devices": 2, "levels": (0.2, 0.7, 0.9), "max_batch": 3, "min_batch": 2, "budget": 0.02,
                  "goal": "round_time"}),
           demo=("Caesar: download and upload ratios and batch sizes of one round", {"n_devices": 20},
                 ("compression-milp", "caesar", "caesar-no-batching", "uniform-compression", "no-compression")))
def caesar_round_instance(n_devices: int = 20, *, seed: int = 0, levels: tuple = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9),
                          budget: float = 0.05, download_cap: float = 0.05, min_batch: int = 8, max_batch: int = 64,
                          goal: str = "traffic", round_bound_s: float = float("inf"),
                          samples_share: float = 0.25) -> CompressionRound:
    """A round of ``n_devices`` as in the module docstring.

    Parameters
    ----------
    n_devices
        :math:`n`.
    seed
        The seed of every draw.
    levels
        The ratio levels.
    budget
        :math:`\\Delta_u` as a share of :math:`\\sum_i C_i` (the importance-weighted mean error allowed).
    download_cap, min_batch, max_batch, goal, round_bound_s
        As in :class:`~edgeplan.formulations.compression.round.CompressionRound`.
    samples_share
        The samples floor :math:`S` as a share of :math:`n\\, b_{max}`.
    """
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels, dtype=float)
    dev = _devices(n_devices, rng, levels)
    scale = np.minimum(1.0, 0.1 + 0.15 * dev["staleness"])
    return CompressionRound(
        sizes=CNN_SIZES, levels=levels, download_bps=rng.uniform(2, 20, n_devices) * MB,
        upload_bps=rng.uniform(0.5, 5, n_devices) * MB, per_sample_s=5 * rng.uniform(0.002, 0.02, n_devices),
        importance=dev["importance"], upload_error=dev["profiles"], download_error=dev["profiles"] * scale[:, None],
        upload_budget=budget * float(dev["importance"].sum()), download_cap=download_cap, min_batch=min_batch,
        max_batch=max_batch, min_samples=samples_share * n_devices * max_batch, round_bound_s=round_bound_s,
        goal=goal, staleness=dev["staleness"], round_index=10, name=f"caesar-round-{n_devices}")


@generator("upload-ratios", cells=lambda n_devices=20, n_grid=20, **_: n_devices * (n_grid + 4),
           tiny=({"n_devices": 2, "n_grid": 2}, {"n_devices": 3, "n_grid": 2, "budget": 0.01},
                 {"n_devices": 2, "n_grid": 3, "budget": 0.2}),
           demo=("Caesar: upload ratios within a deviation budget", {"n_devices": 100},
                 ("upload-waterfill", "upload-cvxpy", "caesar-upload", "uniform-upload")))
def upload_ratios_instance(n_devices: int = 20, *, seed: int = 0, n_grid: int = 19, budget: float = 0.05,
                           max_ratio: float = 0.95) -> UploadRatios:
    """Devices as in the module docstring, ratios on ``n_grid`` equal steps up to ``max_ratio``.

    Parameters
    ----------
    n_devices
        :math:`n`.
    seed
        The seed of every draw.
    n_grid, max_ratio
        The grid :math:`\\theta^g = g \\cdot` ``max_ratio`` / ``n_grid``.
    budget
        :math:`\\Delta` as a share of :math:`\\sum_i C_i`.
    """
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, max_ratio, n_grid + 1)
    dev = _devices(n_devices, rng, grid)
    return UploadRatios(value_bytes=np.full(n_devices, 4.0 * sum(CNN_SIZES)), importance=dev["importance"],
                        grid=grid, error=dev["profiles"], budget=budget * float(dev["importance"].sum()),
                        name=f"upload-ratios-{n_devices}")


@generator("batch-sizing", cells=lambda n_devices=20, **_: n_devices * 4,
           tiny=({"n_devices": 2, "max_batch": 4, "min_batch": 1}, {"n_devices": 3, "max_batch": 3, "min_batch": 2},
                 {"n_devices": 3, "max_batch": 4, "min_batch": 1, "round_bound_s": 2.0}),
           demo=("Caesar: batch sizes that meet at the barrier", {"n_devices": 100},
                 ("batch-sweep", "caesar-batch", "equal-batches")))
def batch_sizing_instance(n_devices: int = 20, *, seed: int = 0, min_batch: int = 8, max_batch: int = 64,
                          round_bound_s: float = float("inf")) -> BatchSizing:
    """Devices as in the module docstring, communicating a 4.4 MB model both ways uncompressed.

    Parameters
    ----------
    n_devices
        :math:`n`.
    seed
        The seed of every draw.
    min_batch, max_batch, round_bound_s
        As in :class:`~edgeplan.formulations.compression.batch.BatchSizing`.
    """
    rng = np.random.default_rng(seed)
    model = 4.0 * sum(CNN_SIZES)
    comm = model / (rng.uniform(2, 20, n_devices) * MB) + model / (rng.uniform(0.5, 5, n_devices) * MB)
    return BatchSizing(per_sample_s=5 * rng.uniform(0.002, 0.02, n_devices), comm_s=comm, min_batch=min_batch,
                       max_batch=max_batch, round_bound_s=round_bound_s, name=f"batch-sizing-{n_devices}")
