"""Sample counts, non-IID splits, shared samples and the EDCR/RDCR coverage metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeplan.errors import ProfileError
from edgeplan.profiles.data import (
    DataOwnership,
    dirichlet_label_counts,
    dirichlet_split,
    label_counts,
    label_skew,
    sample_counts,
    shard_split,
    social_network_data,
)

LABELS = np.random.default_rng(0).integers(0, 10, size=6000)


@pytest.mark.parametrize("dist", ["equal", "uniform", "lognormal", "powerlaw"])
def test_sample_counts_hit_the_total_exactly(dist: str) -> None:
    c = sample_counts(37, total=10_000, distribution=dist, spread=0.8, min_count=5, seed=1)
    assert c.sum() == 10_000 and (c >= 5).all() and c.dtype.kind == "i"
    np.testing.assert_array_equal(c, sample_counts(37, total=10_000, distribution=dist, spread=0.8, min_count=5,
                                                   seed=1))


def test_sample_counts_by_mean_and_errors() -> None:
    assert (sample_counts(4, mean=100) == 100).all()
    c = sample_counts(20_000, mean=300.0, distribution="lognormal", spread=0.5, seed=2)
    assert c.mean() == pytest.approx(300.0, rel=0.02)
    with pytest.raises(ProfileError, match=r"`total` = 10 and `mean` = 3.0; expected exactly one of them"):
        sample_counts(3, total=10, mean=3.0)
    with pytest.raises(ProfileError, match=r"`spread` = 1.5; expected a value in \[0, 1\]"):
        sample_counts(3, total=10, distribution="uniform", spread=1.5)
    with pytest.raises(ProfileError, match=r"`total` = 2; expected at least min_count \* n_users = 3"):
        sample_counts(3, total=2)
    with pytest.raises(ProfileError, match=r"`distribution` = 'zipf'; expected one of 'equal'"):
        sample_counts(3, total=10, distribution="zipf")


def test_dirichlet_counts_keep_class_totals_and_alpha_controls_skew() -> None:
    cc = np.bincount(LABELS)
    skewed = dirichlet_label_counts(cc, 20, 0.1, seed=3)
    iid = dirichlet_label_counts(cc, 20, 1000.0, seed=3)
    np.testing.assert_array_equal(skewed.sum(axis=0), cc)
    np.testing.assert_array_equal(iid.sum(axis=0), cc)
    assert label_skew(skewed).mean() > 0.5 > 0.1 > label_skew(iid).mean()


def test_dirichlet_split_partitions_the_samples() -> None:
    parts = dirichlet_split(LABELS, 15, 0.3, min_samples=20, seed=4)
    allidx = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(LABELS.size))
    assert min(len(p) for p in parts) >= 20
    counts = label_counts(LABELS, parts)
    assert counts.shape == (15, 10) and counts.sum() == LABELS.size
    again = dirichlet_split(LABELS, 15, 0.3, min_samples=20, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    with pytest.raises(ProfileError, match=r"`alpha` = 0.001: no split in 2 tries gave every user >= 300"):
        dirichlet_split(LABELS, 20, 0.001, min_samples=300, max_tries=2, seed=0)
    with pytest.raises(ProfileError, match=r"`labels` has shape \(2, 2\) and dtype int64; expected a non-empty 1-D"):
        dirichlet_split(np.zeros((2, 2), dtype=np.int64), 2, 1.0)


def test_shard_split_is_pathological_non_iid() -> None:
    parts = shard_split(LABELS, 30, 2, seed=5)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(LABELS.size))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 2
    classes = (label_counts(LABELS, parts) > 0).sum(axis=1)
    assert classes.max() <= 4 and np.median(classes) <= 3           # a shard straddles at most 2 classes
    with pytest.raises(ProfileError, match=r"`shards_per_user` = 1000; expected n_users \* shards_per_user <="):
        shard_split(LABELS, 30, 1000)


def _random_sets(rng: np.random.Generator, n_users: int, n_samples: int) -> list[np.ndarray]:
    return [np.flatnonzero(rng.random(n_samples) < rng.uniform(0.05, 0.5)) for _ in range(n_users)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), s=st.integers(1, 60))
def test_coverage_metrics_match_set_arithmetic(seed: int, n: int, s: int) -> None:
    rng = np.random.default_rng(seed)
    sets = _random_sets(rng, n, s)
    own = DataOwnership.from_index_sets(sets)
    py = [set(x.tolist()) for x in sets]
    np.testing.assert_array_equal(own.sample_counts(), [len(x) for x in py])
    w = own.overlap_matrix()
    for i, j in itertools.product(range(n), repeat=2):
        assert w[i, j] == len(py[i] & py[j])
    everyone = set().union(*py)
    for r in range(n + 1):
        for sel in itertools.combinations(range(n), r):
            union = set().union(*(py[i] for i in sel))
            red = sum(len(py[i] & py[j]) for i, j in itertools.combinations(sel, 2))
            assert own.distinct(list(sel)) == len(union)
            assert own.redundant(list(sel)) == red
            total_red = sum(len(py[i] & py[j]) for i, j in itertools.combinations(range(n), 2))
            assert own.edcr(list(sel)) == pytest.approx(len(union) / len(everyone) if everyone else 1.0)
            assert own.rdcr(list(sel)) == pytest.approx(red / total_red if total_red else 0.0)


def test_batched_masks_and_universe() -> None:
    own = social_network_data(12, n_communities=3, samples_per_user=(50, 80), shared_fraction=0.6, pool_factor=1.5,
                              seed=7)
    masks = np.random.default_rng(1).random((9, 12)) < 0.5
    batched = own.distinct(masks)
    np.testing.assert_array_equal(batched, [own.distinct(m) for m in masks])
    com0 = own.community_mask(0)
    assert float(own.edcr(com0, universe=com0)) == 1.0
    assert float(own.rdcr(com0, universe=com0)) == 1.0
    only_one = np.flatnonzero(com0)[:1]
    assert 0 < float(own.edcr(only_one, universe=com0)) < 1 and float(own.rdcr(only_one, universe=com0)) == 0.0
    # communities never share samples
    w = own.overlap_matrix()
    cross = own.community[:, None] != own.community[None, :]
    assert (w[cross] == 0).all() and (w[~cross & ~np.eye(12, dtype=bool)] > 0).any()
    edges = own.social_edges()
    assert (edges[:, 0] < edges[:, 1]).all() and (edges[:, 2] > 0).all()


def test_social_network_generator_counts_and_no_sharing() -> None:
    own = social_network_data(10, samples_per_user=np.arange(100, 110), shared_fraction=0.3, seed=0)
    np.testing.assert_array_equal(own.sample_counts(), np.arange(100, 110))
    private = social_network_data(6, samples_per_user=40, shared_fraction=0.0, seed=0)
    assert private.redundant(np.ones(6, dtype=bool)) == 0 and float(private.rdcr([0, 1])) == 0.0
    assert private.patterns.shape == (6, 6)            # one private group per user
    with pytest.raises(ProfileError, match=r"`n_communities` = 7; expected at most n_users = 6"):
        social_network_data(6, n_communities=7)
    with pytest.raises(ProfileError, match=r"`selected` = \[9\]; expected user indices in \[0, 5\]"):
        private.distinct([9])
    with pytest.raises(ProfileError, match=r"`patterns` has a group with no owner"):
        DataOwnership(np.zeros((1, 3), dtype=bool), np.array([4]))
