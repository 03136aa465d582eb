"""Token trees of several drafters and CoSine's fusion on real (small) models."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import stats  # noqa: E402

from edgeplan.validation.lm import LMConfig, MarkovCorpus, decoder  # noqa: E402
from edgeplan.validation.serving.speculative import distributions, greedy_generate, verify_tree  # noqa: E402
from edgeplan.validation.serving.tree import fused_generate, tree_generate  # noqa: E402

CORPUS = MarkovCorpus(vocab=12, domains=2, seed=5)


def _models(n: int = 3):
    target = decoder(CORPUS.n_tokens, LMConfig(n_layer=2, n_embd=32, n_head=2, seed=1)).eval()
    drafters = [decoder(CORPUS.n_tokens, LMConfig(n_layer=1, n_embd=16, n_head=2, seed=2 + j)).eval()
                for j in range(n)]
    return target, drafters


def _after(target, prompt):
    """The target's distributions after ``prompt`` + one token, cached by the token."""
    cache: dict[int, np.ndarray] = {}

    def after(x: int) -> np.ndarray:
        if x not in cache:
            cache[x] = distributions(target, torch.cat([prompt, torch.tensor([x])]), 2, 1.0)
        return cache[x]

    return after


def _chi_square(counts: np.ndarray, expected: np.ndarray) -> float:
    """The chi-square p-value of ``counts`` against ``expected``, the bins expecting under 5 pooled."""
    keep = expected >= 5

    def bins(a: np.ndarray) -> np.ndarray:
        return np.append(a[keep], a[~keep].sum()) if (~keep).any() else a[keep]

    return float(stats.chisquare(bins(counts), bins(expected)).pvalue)


@pytest.mark.parametrize("k", [1, 3])
def test_greedy_tree_and_fusion_equal_the_targets_greedy_output(k: int) -> None:
    target, drafters = _models()
    prompt = CORPUS.sample(1, 6, np.random.default_rng(k))[0]
    want = greedy_generate(target, prompt, 13)
    assert np.array_equal(tree_generate(target, drafters, prompt, 13, k)[0], want)
    assert np.array_equal(fused_generate(target, drafters, prompt, 13, k)[0], want)


def test_tree_sampling_emits_the_targets_distribution() -> None:
    """Chi-square at significance 0.001 on the first emitted token: two drafters, one draft each (a tree of two
    children), 6,000 draws, real model distributions."""
    target, drafters = _models(2)
    prompt = torch.as_tensor(CORPUS.sample(1, 5, np.random.default_rng(0))[0])
    q = [distributions(d, prompt, 1, 1.0)[0] for d in drafters]
    rng = np.random.default_rng(1)
    after = _after(target, prompt)

    n = 6000
    counts = np.zeros(q[0].size)
    for _ in range(n):
        xs = [int(rng.choice(qj.size, p=qj)) for qj in q]
        acc, token = verify_tree([after(x) for x in xs], [[x] for x in xs], [[qj] for qj in q], 1.0, rng)
        counts[acc[0] if acc else token] += 1
    expected = distributions(target, prompt, 1, 1.0)[0] * n
    assert _chi_square(counts, expected) > 1e-3
    assert _chi_square(counts, q[0] * n) < 1e-3  # the test has power


def test_a_tree_accepts_at_least_as_much_as_its_best_chain_on_average() -> None:
    target, drafters = _models(3)
    rng = np.random.default_rng(4)
    prompts = CORPUS.sample(4, 6, rng)
    tree = single = 0
    for pr in prompts:
        tree += tree_generate(target, drafters, pr, 16, 3, temperature=0.0)[1].accepted
        single += max(tree_generate(target, [d], pr, 16, 3, temperature=0.0)[1].accepted for d in drafters)
    assert tree >= single * 0.9  # greedy trees take any branch that matches; single chains are one branch


def test_tree_attention_scores_every_chain_as_its_own_sequence_would() -> None:
    """One pass over a left-padded batch of trees (shared prefixes, contexts of different lengths, a request
    without chains) gives each chain the distributions of its own sequence."""
    from edgeplan.validation.serving.top_nsigma import TopNSigma
    from edgeplan.validation.serving.tree import token_tree, tree_distributions

    target, _ = _models(1)
    rng = np.random.default_rng(4)
    a, b = CORPUS.sample(1, 9, rng)[0], CORPUS.sample(1, 5, rng)[0]
    trees = [(a, [[3, 4, 5], [3, 4, 1], [7, 2, 2]]), (b, [[1, 1]]), (CORPUS.sample(1, 7, rng)[0], [])]
    tokens, parent, depth, paths = token_tree(trees[0][1])
    assert tokens == [3, 4, 5, 1, 7, 2, 2] and parent == [-1, 0, 1, 1, -1, 4, 5] and depth == [1, 2, 3, 3, 1, 2, 3]
    assert paths == [[0, 1, 2], [0, 1, 3], [4, 5, 6]]
    for temperature, processor in ((1.0, None), (0.0, None), (0.7, TopNSigma(1.0))):
        got = tree_distributions(target, trees, temperature, processor)
        for (ctx, chains), per_chain in zip(trees, got, strict=True):
            for chain, p in zip(chains or [[]], per_chain, strict=True):
                seq = torch.as_tensor(np.concatenate([ctx, chain]).astype(np.int64))
                want = distributions(target, seq, len(chain) + 1, temperature, processor)
                assert p.shape == want.shape and np.allclose(p, want, atol=1e-6)


def test_the_fused_law_is_exact_with_ties() -> None:
    """Against enumeration of every pair of draws; confidence ties go to the lower drafter index."""
    from itertools import product

    from edgeplan.validation.serving.tree import fused_proposal

    qs = [np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.5, 0.25, 0.25, 0.0]), np.array([0.1, 0.2, 0.3, 0.4])]
    want = np.zeros(4)
    for xs in product(range(4), repeat=3):
        pr = np.prod([q[x] for q, x in zip(qs, xs, strict=True)])
        conf = [q[x] for q, x in zip(qs, xs, strict=True)]
        want[xs[int(np.argmax(conf))]] += pr  # argmax: the first of the most confident
    assert np.allclose(fused_proposal(qs), want, atol=1e-12) and abs(want.sum() - 1) < 1e-12


def test_fused_sampling_emits_the_targets_distribution() -> None:
    """Chi-square at significance 0.001 on the first emitted token: two drafters fused, one draft, 6,000 draws,
    real model distributions; verified against the drafters' own law instead, the test rejects."""
    from edgeplan.validation.serving.tree import fused_proposal

    target, drafters = _models(2)
    prompt = torch.as_tensor(CORPUS.sample(1, 5, np.random.default_rng(2))[0])
    q = [distributions(d, prompt, 1, 1.0)[0] for d in drafters]
    qf = fused_proposal(q)
    after = _after(target, prompt)

    rng = np.random.default_rng(5)
    n = 6000
    counts, wrong = np.zeros(qf.size), np.zeros(qf.size)
    for _ in range(n):
        xs = [int(rng.choice(qj.size, p=qj)) for qj in q]
        x = xs[int(np.argmax([qj[xj] for qj, xj in zip(q, xs, strict=True)]))]
        acc, token = verify_tree([after(x)], [[x]], [[qf]], 1.0, rng)
        counts[acc[0] if acc else token] += 1
        acc, token = verify_tree([after(x)], [[x]], [[q[0]]], 1.0, rng)  # the wrong proposal law
        wrong[acc[0] if acc else token] += 1
    expected = distributions(target, prompt, 1, 1.0)[0] * n
    assert _chi_square(counts, expected) > 1e-3
    assert _chi_square(wrong, expected) < 1e-3
    out, st = fused_generate(target, drafters, prompt.numpy(), 12, 3, temperature=1.0, rng=rng)
    assert out.size == 12 and st.accepted <= st.drafted
