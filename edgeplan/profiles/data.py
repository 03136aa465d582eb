r"""Federated data: sample counts, non-IID label splits, shared samples and coverage metrics.

Label splits
------------
* **Dirichlet** (Hsu et al. 2019): for each class :math:`c`, proportions :math:`q_c \sim \mathrm{Dir}(\alpha
  \mathbf 1_N)` over the :math:`N` users; user :math:`n` gets :math:`\approx q_{c,n}` of the class's samples.
  Small :math:`\alpha` (0.1) is highly skewed, :math:`\alpha \to \infty` is IID.
* **Shards** (McMahan et al. 2017): sort samples by label, cut them into :math:`N s` equal shards and give
  each user :math:`s` random shards (2 shards: about 2 classes per user).

Shared samples and coverage (HFL-SNM, arXiv 2509.14938)
-------------------------------------------------------
Users' datasets :math:`D_n` may overlap (data shared along a social network). :class:`DataOwnership`
stores them compactly as *groups*: :math:`|g|` samples owned by exactly the users :math:`P_g`. For a
selected set :math:`S` within a universe :math:`U` (a community, by default all users):

* effective coverage :math:`D^{ef}_S = |\bigcup_{n\in S} D_n| = \sum_g |g|\,[P_g \cap S \neq \emptyset]`,
  EDCR :math:`r_{ef} = D^{ef}_S / D^{ef}_U`;
* redundant coverage :math:`D^{re}_S = \sum_{i<j \in S} |D_i \cap D_j| = \sum_g |g| \binom{|P_g\cap S|}{2}`,
  RDCR :math:`r_{re} = D^{re}_S / D^{re}_U` (0 when :math:`D^{re}_U = 0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import ProfileError
from edgeplan.profiles._util import Seed, rng_from


def _positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ProfileError(f"`{name}` = {value!r}; expected an integer >= {minimum}")
    return int(value)


def _round_to_total(weights: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Integers >= ``minimum`` proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    n = weights.size
    spare = total - minimum * n
    share = weights / weights.sum() * spare
    base = np.floor(share).astype(np.int64)
    rest = spare - int(base.sum())
    order = np.argsort(-(share - base), kind="stable")
    base[order[:rest]] += 1
    return base + minimum


def sample_counts(n_users: int, *, total: int | None = None, mean: float | None = None,
                  distribution: str = "equal", spread: float = 1.0, min_count: int = 1,
                  seed: Seed = None) -> np.ndarray:
    r"""Per-user sample counts :math:`D_n`.

    Exactly one of ``total`` (counts sum to it exactly) or ``mean`` (counts are drawn around it) is given.

    ``distribution``:
    ``"equal"``; ``"uniform"`` (:math:`U[(1-s)\mu, (1+s)\mu]`, ``spread`` :math:`s \in [0,1]`);
    ``"lognormal"`` (:math:`\ln D \sim \mathcal N(\ln\mu - s^2/2, s^2)`, mean :math:`\mu`, a common choice for
    LEAF-like imbalance); ``"powerlaw"`` (Pareto weights with tail index :math:`1 + 1/s`).
    """
    n = _positive_int("n_users", n_users)
    one_of("distribution", distribution, ("equal", "uniform", "lognormal", "powerlaw"), error=ProfileError)
    if (total is None) == (mean is None):
        raise ProfileError(f"`total` = {total!r} and `mean` = {mean!r}; expected exactly one of them")
    m = _positive_int("min_count", min_count, minimum=0)
    s = as_scalar("spread", spread, min_value=0.0, error=ProfileError)
    if distribution == "uniform" and s > 1:
        raise ProfileError(f"`spread` = {s}; expected a value in [0, 1] for the uniform distribution")
    mu = (as_scalar("mean", mean, min_value=0.0, strict_min=True, error=ProfileError) if mean is not None
          else _positive_int("total", total, minimum=0) / n)
    if total is not None and total < m * n:
        raise ProfileError(f"`total` = {total}; expected at least min_count * n_users = {m * n}")
    rng = rng_from(seed)
    if distribution == "equal":
        w = np.ones(n)
    elif distribution == "uniform":
        w = rng.uniform(1 - s, 1 + s, size=n) + 1e-12
    elif distribution == "lognormal":
        w = rng.lognormal(-s * s / 2, s, size=n) if s > 0 else np.ones(n)
    else:
        w = (rng.pareto(1.0 + 1.0 / s, size=n) + 1.0) if s > 0 else np.ones(n)
    if total is not None:
        return _round_to_total(w, int(total), m)
    return np.maximum(np.rint(mu * w / w.mean() if distribution == "powerlaw" else mu * w), m).astype(np.int64)


def _labels(labels: Any) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iu" or (y < 0).any():
        raise ProfileError(f"`labels` has shape {y.shape} and dtype {y.dtype}; expected a non-empty 1-D array of "
                           "non-negative integer class labels")
    return y.astype(np.int64)


def dirichlet_label_counts(class_counts: Any, n_users: int, alpha: float, *, seed: Seed = None) -> np.ndarray:
    """(N, C) sample counts per user and class: class :math:`c`'s samples split by :math:`\\mathrm{Dir}(\\alpha)`.

    Column sums equal ``class_counts`` exactly (largest-remainder rounding).
    """
    cc = as_array("class_counts", class_counts, shape=(None,), dtype=np.int64, min_value=0, error=ProfileError)
    n = _positive_int("n_users", n_users)
    a = as_scalar("alpha", alpha, min_value=0.0, strict_min=True, error=ProfileError)
    rng = rng_from(seed)
    out = np.zeros((n, cc.size), dtype=np.int64)
    for c, total in enumerate(cc):
        if total:
            q = rng.dirichlet(np.full(n, a))
            out[:, c] = _round_to_total(q + 1e-300, int(total), 0)
    return out


def dirichlet_split(labels: Any, n_users: int, alpha: float, *, min_samples: int = 1, max_tries: int = 100,
                    seed: Seed = None) -> list[np.ndarray]:
    """Split sample indices by label with Dirichlet(``alpha``) proportions per class (Hsu et al. 2019).

    Redraws (up to ``max_tries``) until every user has at least ``min_samples`` samples, the usual practice.
    Returns one sorted index array per user; together they partition ``range(len(labels))``.
    """
    y = _labels(labels)
    n = _positive_int("n_users", n_users)
    ms = _positive_int("min_samples", min_samples, minimum=0)
    if ms * n > y.size:
        raise ProfileError(f"`min_samples` = {ms}; expected at most len(labels) / n_users = {y.size // n}")
    rng = rng_from(seed)
    n_classes = int(y.max()) + 1
    by_class = [np.flatnonzero(y == c) for c in range(n_classes)]
    for _ in range(_positive_int("max_tries", max_tries)):
        counts = dirichlet_label_counts([len(ix) for ix in by_class], n, alpha, seed=rng)
        if (counts.sum(axis=1) >= ms).all():
            break
    else:
        raise ProfileError(f"`alpha` = {alpha}: no split in {max_tries} tries gave every user >= {ms} samples; "
                           "expected a larger alpha or a smaller min_samples")
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for c, ix in enumerate(by_class):
        perm = rng.permutation(ix)
        cuts = np.cumsum(counts[:, c])[:-1]
        for u, chunk in enumerate(np.split(perm, cuts)):
            parts[u].append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def shard_split(labels: Any, n_users: int, shards_per_user: int = 2, *, seed: Seed = None) -> list[np.ndarray]:
    """Pathological non-IID split of McMahan et al. (2017): ``shards_per_user`` label-sorted shards per user.

    Samples are sorted by label (ties in random order) and cut into ``n_users * shards_per_user`` shards of
    (almost) equal size. Returns one sorted index array per user.
    """
    y = _labels(labels)
    n = _positive_int("n_users", n_users)
    s = _positive_int("shards_per_user", shards_per_user)
    if n * s > y.size:
        raise ProfileError(f"`shards_per_user` = {s}; expected n_users * shards_per_user <= len(labels) = {y.size}")
    rng = rng_from(seed)
    order = np.lexsort((rng.random(y.size), y))
    shards = np.array_split(order, n * s)
    assign = rng.permutation(n * s).reshape(n, s)
    return [np.sort(np.concatenate([shards[k] for k in row])) for row in assign]


def label_counts(labels: Any, splits: Sequence[Any], n_classes: int | None = None) -> np.ndarray:
    """(N, C) number of samples of each class held by each user."""
    y = _labels(labels)
    c = int(y.max()) + 1 if n_classes is None else _positive_int("n_classes", n_classes)
    return np.stack([np.bincount(y[np.asarray(ix, dtype=np.int64)], minlength=c)[:c] for ix in splits])


def label_skew(counts: Any) -> np.ndarray:
    """Per-user total-variation distance between its label distribution and the global one, in [0, 1]."""
    m = as_array("counts", counts, shape=(None, None), min_value=0.0, error=ProfileError)
    tot = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tot > 0, m / np.where(tot > 0, tot, 1.0), 0.0)
    g = m.sum(axis=0) / max(m.sum(), 1.0)
    return 0.5 * np.abs(p - g).sum(axis=1)


# ----------------------------------------------------------------------------------------------------------
# shared samples and coverage


def _selection(selected: Any, n: int) -> np.ndarray:
    s = np.asarray(selected)
    if s.dtype == bool:
        if s.shape[-1:] != (n,):
            raise ProfileError(f"`selected` has shape {s.shape}; expected a boolean mask (..., {n})")
        return s
    idx = s.astype(np.int64).ravel() if s.size else np.zeros(0, dtype=np.int64)
    if s.size and (s.dtype.kind not in "iu" or (idx < 0).any() or (idx >= n).any()):
        raise ProfileError(f"`selected` = {selected!r}; expected user indices in [0, {n - 1}] or a boolean mask")
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


@dataclass(frozen=True, slots=True)
class DataOwnership:
    """Which users hold which samples, as groups of samples with the same owner set.

    Attributes
    ----------
    patterns
        (G, N) boolean: ``patterns[g, n]`` when user n holds the samples of group g.
    group_sizes
        (G,) number of samples in each group.
    community
        (N,) community label of each user (all 0 by default).
    """

    patterns: np.ndarray
    group_sizes: np.ndarray
    community: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        p = as_array("patterns", self.patterns, shape=(None, None), dtype=bool, error=ProfileError)
        s = as_array("group_sizes", self.group_sizes, shape=(p.shape[0],), dtype=np.int64, min_value=0,
                     error=ProfileError)
        if p.shape[0] and (~p.any(axis=1)).any():
            raise ProfileError("`patterns` has a group with no owner; expected every group to have one")
        com = np.zeros(p.shape[1], dtype=np.int64) if self.community is None else self.community
        com = as_array("community", com, shape=(p.shape[1],), dtype=np.int64, min_value=0, error=ProfileError)
        object.__setattr__(self, "patterns", p)
        object.__setattr__(self, "group_sizes", s)
        object.__setattr__(self, "community", com)

    @property
    def n_users(self) -> int:
        return int(self.patterns.shape[1])

    @classmethod
    def from_groups(cls, patterns: Any, group_sizes: Any, community: Any = None) -> DataOwnership:
        """From possibly repeated (pattern, size) pairs: equal patterns are merged, empty groups dropped."""
        p = as_array("patterns", patterns, shape=(None, None), dtype=bool, error=ProfileError)
        s = as_array("group_sizes", group_sizes, shape=(p.shape[0],), dtype=np.int64, min_value=0,
                     error=ProfileError)
        keep = p.any(axis=1) & (s > 0)
        p, s = p[keep], s[keep]
        if p.shape[0] == 0:
            return cls(np.zeros((0, p.shape[1]), dtype=bool), np.zeros(0, dtype=np.int64), community)
        uniq, inverse = np.unique(np.packbits(p, axis=1), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        first = np.zeros(uniq.shape[0], dtype=np.int64)
        first[inverse[::-1]] = np.arange(p.shape[0])[::-1]
        return cls(p[first], np.bincount(inverse, weights=s, minlength=uniq.shape[0]).astype(np.int64), community)

    @classmethod
    def from_membership(cls, membership: Any, community: Any = None) -> DataOwnership:
        """From an (N, S) boolean matrix (user n holds sample s); samples held by nobody are dropped."""
        m = as_array("membership", membership, shape=(None, None), dtype=bool, error=ProfileError)
        return cls.from_groups(m.T, np.ones(m.shape[1], dtype=np.int64), community)

    @classmethod
    def from_index_sets(cls, sets: Sequence[Any], community: Any = None) -> DataOwnership:
        """From one array of (global) sample ids per user."""
        arrays = [np.unique(np.asarray(s, dtype=np.int64)) for s in sets]
        ids = np.unique(np.concatenate(arrays)) if arrays and any(a.size for a in arrays) else np.zeros(0, int)
        m = np.zeros((len(arrays), ids.size), dtype=bool)
        for n, a in enumerate(arrays):
            m[n, np.searchsorted(ids, a)] = True
        return cls.from_membership(m, community)

    def sample_counts(self) -> np.ndarray:
        """(N,) :math:`|D_n|`."""
        return self.group_sizes @ self.patterns

    def overlap_matrix(self) -> np.ndarray:
        """(N, N) :math:`|D_i \\cap D_j|` (the diagonal holds :math:`|D_i|`): the social graph's weights."""
        p = self.patterns.astype(np.int64)
        return (p * self.group_sizes[:, None]).T @ p

    def social_edges(self) -> np.ndarray:
        """(E, 3) rows ``(i, j, |D_i ∩ D_j|)`` with ``i < j`` and a positive overlap."""
        w = self.overlap_matrix()
        i, j = np.triu_indices(self.n_users, k=1)
        keep = w[i, j] > 0
        return np.stack([i[keep], j[keep], w[i, j][keep]], axis=1)

    def _owners(self, selected: Any) -> np.ndarray:
        mask = _selection(selected, self.n_users)
        return mask.astype(np.int64) @ self.patterns.T.astype(np.int64)        # (..., G) owners selected

    def distinct(self, selected: Any) -> np.ndarray:
        """:math:`|\\bigcup_{n \\in S} D_n|` for a mask (..., N) or an index list (vectorized over masks)."""
        return (self._owners(selected) > 0) @ self.group_sizes

    def redundant(self, selected: Any) -> np.ndarray:
        """:math:`\\sum_{i<j \\in S} |D_i \\cap D_j|`."""
        k = self._owners(selected)
        return (k * (k - 1) // 2) @ self.group_sizes

    def _universe(self, universe: Any) -> np.ndarray:
        return np.ones(self.n_users, dtype=bool) if universe is None else _selection(universe, self.n_users)

    def edcr(self, selected: Any, universe: Any = None) -> np.ndarray:
        """Effective data coverage rate :math:`D^{ef}_{S \\cap U} / D^{ef}_U` (1 for an empty universe)."""
        u = self._universe(universe)
        s = _selection(selected, self.n_users) & u
        den = self.distinct(u)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, self.distinct(s) / np.where(den > 0, den, 1), 1.0)

    def rdcr(self, selected: Any, universe: Any = None) -> np.ndarray:
        """Redundant data coverage rate :math:`D^{re}_{S \\cap U} / D^{re}_U` (0 when nothing overlaps)."""
        u = self._universe(universe)
        s = _selection(selected, self.n_users) & u
        den = self.redundant(u)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, self.redundant(s) / np.where(den > 0, den, 1), 0.0)

    def community_mask(self, c: int) -> np.ndarray:
        """(N,) users of community ``c``."""
        return self.community == c


def social_network_data(n_users: int, *, n_communities: int = 1, samples_per_user: Any = (100, 500),
                        shared_fraction: float = 0.5, pool_factor: float = 2.0, seed: Seed = None) -> DataOwnership:
    r"""Synthetic overlapping datasets for the HFL-SNM coverage metrics.

    Users are split round-robin into ``n_communities``. User :math:`n` holds :math:`D_n` samples
    (``samples_per_user``: an int, an (N,) array or a ``(low, high)`` uniform range): a fraction
    ``shared_fraction`` drawn without replacement from its community's pool of
    :math:`\lceil \text{pool\_factor} \cdot \overline{\text{shared count}}\rceil` samples, the rest private.
    Smaller ``pool_factor`` means more overlap; users of different communities never overlap.
    """
    n = _positive_int("n_users", n_users)
    k = _positive_int("n_communities", n_communities)
    if k > n:
        raise ProfileError(f"`n_communities` = {k}; expected at most n_users = {n}")
    f = as_scalar("shared_fraction", shared_fraction, min_value=0.0, max_value=1.0, error=ProfileError)
    pf = as_scalar("pool_factor", pool_factor, min_value=1.0, error=ProfileError)
    rng = rng_from(seed)
    if isinstance(samples_per_user, tuple):
        lo, hi = (int(v) for v in samples_per_user)
        if not 1 <= lo <= hi:
            raise ProfileError(f"`samples_per_user` = {samples_per_user!r}; expected (low, high) with 1 <= low <= high")
        d = rng.integers(lo, hi + 1, size=n)
    else:
        d = np.broadcast_to(as_array("samples_per_user", samples_per_user, dtype=np.int64, min_value=1,
                                     error=ProfileError), (n,)).copy()
    community = np.arange(n) % k
    shared = np.rint(d * f).astype(np.int64)
    private = d - shared
    blocks = []
    for c in range(k):
        users = np.flatnonzero(community == c)
        pool = int(np.ceil(pf * max(shared[users].max(initial=0), shared[users].mean() if users.size else 0)))
        m = np.zeros((n, pool), dtype=bool)
        for u in users:
            m[u, rng.choice(pool, size=shared[u], replace=False)] = True
        blocks.append(m)
    shared_part = DataOwnership.from_membership(np.concatenate(blocks, axis=1), community)
    patterns = np.concatenate([shared_part.patterns, np.eye(n, dtype=bool)])
    sizes = np.concatenate([shared_part.group_sizes, private])
    return DataOwnership.from_groups(patterns, sizes, community)

__all__ = [
    "DataOwnership",
    "dirichlet_label_counts",
    "dirichlet_split",
    "label_counts",
    "label_skew",
    "sample_counts",
    "shard_split",
    "social_network_data",
]
