r"""Bytes on the wire of the two Caesar codecs, and the top-k error profile of a tensor.

A tensor of :math:`n` float32 entries compressed at ratio :math:`\theta \in [0, 1)` compresses
:math:`q = \lfloor \theta n \rfloor` entries and keeps :math:`k = n - q` at full precision (the largest in
magnitude). With :math:`q = 0` it is sent dense (:math:`4n` bytes). Otherwise:

* upload (top-k sparsification; the compressed entries are dropped): a bitmap of the kept positions and their
  values, :math:`\lceil n/8 \rceil + 4k` bytes;
* download (Caesar's low-deviation codec; the compressed entries become signs): the bitmap, the kept values, one
  sign bit per compressed entry and two float32 scalars (the mean and the largest magnitude of the compressed
  entries), :math:`\lceil n/8 \rceil + 4k + \lceil q/8 \rceil + 8` bytes.

These are the byte counts of :mod:`edgeplan.validation.compression.codecs`, exactly (a test checks it).

The top-k error profile of a tensor :math:`g` is the share of its energy in the :math:`q` entries smallest in
magnitude, :math:`\epsilon(\theta) = \sum_{\text{smallest } q} g^2 / \|g\|^2`: nondecreasing and convex in
:math:`\theta` on a grid (each step adds a larger entry).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compressed_entries(theta: Any, sizes: Any) -> np.ndarray:
    """``(..., T)`` :math:`q = \\lfloor \\theta n \\rfloor` per tensor (``theta`` broadcast against ``sizes``)."""
    theta = np.asarray(theta, dtype=float)[..., None]
    n = np.asarray(sizes, dtype=np.int64)
    return np.floor(theta * n + 1e-9).astype(np.int64)


def upload_bytes(theta: Any, sizes: Any) -> np.ndarray:
    """Bytes of the top-k upload at ratio ``theta`` of a model with tensors of ``sizes`` entries (summed).

    Parameters
    ----------
    theta
        Ratios (any shape).
    sizes
        Entries of each tensor.
    """
    n = np.asarray(sizes, dtype=np.int64)
    q = compressed_entries(theta, n)
    per = np.where(q == 0, 4 * n, -(-n // 8) + 4 * (n - q))
    return per.sum(axis=-1).astype(float)


def download_bytes(theta: Any, sizes: Any) -> np.ndarray:
    """Bytes of Caesar's download at ratio ``theta`` (summed over the tensors).

    Parameters
    ----------
    theta
        Ratios (any shape).
    sizes
        Entries of each tensor.
    """
    n = np.asarray(sizes, dtype=np.int64)
    q = compressed_entries(theta, n)
    per = np.where(q == 0, 4 * n, -(-n // 8) + 4 * (n - q) + (-(-q // 8)) + 8)
    return per.sum(axis=-1).astype(float)


def topk_error_profile(values: Any, grid: Any) -> np.ndarray:
    """:math:`\\epsilon(\\theta)` of the flattened ``values`` at each ratio of ``grid`` (0 for a zero tensor).

    Parameters
    ----------
    values
        The tensor (flattened).
    grid
        The ratios.
    """
    g2 = np.sort(np.asarray(values, dtype=float).ravel() ** 2)
    total = float(g2.sum())
    cum = np.concatenate([[0.0], np.cumsum(g2)])
    q = np.floor(np.asarray(grid, dtype=float) * g2.size + 1e-9).astype(np.int64)
    return cum[q] / total if total > 0 else np.zeros(q.size)


__all__ = ["compressed_entries", "download_bytes", "topk_error_profile", "upload_bytes"]
