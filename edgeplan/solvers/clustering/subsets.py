r"""The subset-partition recursion shared by ``cluster-dp`` and ``group-dp``.

With a cost :math:`g(T)` for every subset mask :math:`T` of :math:`N` items (``inf``: not a block),

.. math::

    f_k(S) = \min_{T \subseteq S,\ \min S \in T} g(T) + f_{k-1}(S \setminus T), \qquad f_0(\emptyset) = 0,

gives the cheapest split of :math:`S` into exactly :math:`k` blocks; without a block count, :math:`f` refers to
itself (any number of blocks). Taking the lowest item's block first visits each split once:
:math:`O(3^N)` subset pairs per layer, in Python lists (the recursion indexes them millions of times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

INF = float("inf")


def _layer(cost: Sequence[float], prev: list[float] | None, n: int,
           passed: Callable[[], bool]) -> tuple[list[float], list[int]] | None:
    f = [0.0] + [INF] * ((1 << n) - 1) if prev is None else [INF] * (1 << n)
    base = f if prev is None else prev
    arg = [0] * (1 << n)
    for S in range(1, 1 << n):
        if S & 4095 == 0 and passed():
            return None
        low = S & -S
        rest = S ^ low
        sub = rest
        best, at = INF, 0
        while True:
            T = sub | low
            if cost[T] < INF and base[S ^ T] < INF:
                v = cost[T] + base[S ^ T]
                if v < best:
                    best, at = v, T
            if sub == 0:
                break
            sub = (sub - 1) & rest
        f[S], arg[S] = best, at
    return f, arg


def best_partition(cost: Sequence[float], n: int, blocks: int | None,
                   passed: Callable[[], bool]) -> list[int] | bool | None:
    """The blocks (subset masks) of the cheapest split of all ``n`` items: into exactly ``blocks`` blocks, or any
    number (``None``). ``False`` when no split has a finite cost, ``None`` when ``passed()`` cut the recursion
    short.

    Parameters
    ----------
    cost
        :math:`g` over the :math:`2^n` masks (``inf`` where a mask is no block).
    n
        Items.
    blocks
        The number of blocks, or ``None``.
    passed
        Polled every 4,096 subsets: ``True`` stops the recursion.
    """
    full = (1 << n) - 1
    layers: list[list[int]] = []
    f: list[float] = [0.0] + [INF] * full  # f_0
    for _ in range(1 if blocks is None else blocks):
        out = _layer(cost, None if blocks is None else f, n, passed)
        if out is None:
            return None
        f, arg = out
        layers.append(arg)
    if not f[full] < INF:
        return False
    picked, S = [], full
    while S:
        arg = layers[0] if blocks is None else layers[blocks - 1 - len(picked)]
        picked.append(arg[S])
        S ^= arg[S]
    return picked

__all__ = ["best_partition"]
