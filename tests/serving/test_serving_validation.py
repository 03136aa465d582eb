"""Speculative decoding on real (small, trained-here or freshly initialised) models, and the top-nσ sampler."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import stats  # noqa: E402

from edgeplan.errors import ProblemDataError  # noqa: E402
from edgeplan.validation.lm import LMConfig, MarkovCorpus, decoder, trained_lm  # noqa: E402
from edgeplan.validation.serving.speculative import (  # noqa: E402
    distributions,
    greedy_generate,
    measure_acceptance,
    speculative_generate,
    verify_draft,
)
from edgeplan.validation.serving.top_nsigma import TopNSigma, top_nsigma_mask  # noqa: E402

CORPUS = MarkovCorpus(vocab=16, domains=2, seed=5)


def _models():
    target = decoder(CORPUS.n_tokens, LMConfig(n_layer=2, n_embd=32, n_head=2, seed=1)).eval()
    drafter = decoder(CORPUS.n_tokens, LMConfig(n_layer=1, n_embd=16, n_head=2, seed=2)).eval()
    return target, drafter


@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_speculative_output_equals_the_targets_greedy_output(k: int) -> None:
    target, drafter = _models()
    prompt = CORPUS.sample(1, 6, np.random.default_rng(k))[0]
    out, st = speculative_generate(target, drafter, prompt, 17, k)
    assert np.array_equal(out, greedy_generate(target, prompt, 17))
    assert st.drafted >= st.examined >= st.accepted and len(out) == 17


def test_sampled_tokens_have_the_targets_distribution() -> None:
    """Chi-square test at significance 0.001 of the first emitted token over 6,000 draws of the rule, with
    real target and drafter distributions (k = 2) and a drafter far from the target."""
    target, drafter = _models()
    prompt = torch.as_tensor(CORPUS.sample(1, 5, np.random.default_rng(0))[0])
    rng = np.random.default_rng(1)
    q1 = distributions(drafter, prompt, 1, 1.0)[0]
    counts = np.zeros(q1.size)
    n = 6000
    cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(n):
        x1 = int(rng.choice(q1.size, p=q1))
        if (x1,) not in cache:
            q2 = distributions(drafter, torch.cat([prompt, torch.tensor([x1])]), 1, 1.0)[0]
            cache[(x1,)] = (q2, np.zeros(0))
        q2 = cache[(x1,)][0]
        x2 = int(rng.choice(q2.size, p=q2))
        if (x1, x2) not in cache:
            cache[(x1, x2)] = (distributions(target, torch.cat([prompt, torch.tensor([x1, x2])]), 3, 1.0), q2)
        p = cache[(x1, x2)][0]
        accepted, token = verify_draft(p, np.stack([q1, q2]), np.array([x1, x2]), rng)
        counts[x1 if accepted >= 1 else token] += 1
    expected = distributions(target, prompt, 1, 1.0)[0] * n
    keep = expected >= 5

    def bins(a: np.ndarray) -> np.ndarray:  # tokens expected fewer than 5 times share one bin
        return np.append(a[keep], a[~keep].sum()) if (~keep).any() else a[keep]

    assert abs(counts.sum() - expected.sum()) < 1e-6 * n
    assert stats.chisquare(bins(counts), bins(expected)).pvalue > 1e-3
    # and the test has power: the drafter's own first-token distribution is rejected
    assert stats.chisquare(bins(counts), bins(q1 * n)).pvalue < 1e-3


def test_trained_specialists_beat_other_domains_drafters() -> None:
    c = MarkovCorpus(vocab=16, domains=2, seed=7)
    target = trained_lm(c, LMConfig(n_layer=2, n_embd=32, n_head=2, steps=150, seed=1))
    drafters = [trained_lm(c, LMConfig(n_layer=1, n_embd=16, n_head=2, steps=120, seed=2), domains=[d])
                for d in range(2)]
    alpha = measure_acceptance(target, drafters, c, prompts=4, new_tokens=16)
    assert alpha.shape == (2, 2) and np.all((alpha >= 0) & (alpha <= 1))
    assert alpha[0, 0] > alpha[1, 0] and alpha[1, 1] > alpha[0, 1], alpha


def test_top_nsigma_keeps_the_tokens_within_n_sigma_of_the_max_at_every_temperature() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g, dtype=torch.float64) * 3
    for n in (0.5, 1.0, 2.0):
        proc = TopNSigma(n)
        kept = ~torch.isinf(proc(None, logits))
        want = logits >= logits.max(-1, keepdim=True).values - n * logits.std(-1, unbiased=False, keepdim=True)
        assert torch.equal(kept, want) and kept.any(-1).all()
        for temperature in (0.5, 1.0, 3.0):
            assert torch.equal(top_nsigma_mask(logits / temperature, n), want)
    assert (~torch.isinf(TopNSigma(0.5)(None, logits))).sum() < (~torch.isinf(TopNSigma(2.0)(None, logits))).sum()
    with pytest.raises(ProblemDataError, match="`n` = 0"):
        TopNSigma(0)


def test_speculative_decoding_with_top_nsigma_emits_only_kept_tokens() -> None:
    target, drafter = _models()
    proc = TopNSigma(1.0)
    prompt = CORPUS.sample(1, 6, np.random.default_rng(3))[0]
    out, _ = speculative_generate(target, drafter, prompt, 12, 3, temperature=1.5, processor=proc,
                                  rng=np.random.default_rng(4))
    seq = torch.as_tensor(np.concatenate([prompt, out]))
    with torch.no_grad():
        logits = target(seq[None]).logits[0].double()
    for t, token in enumerate(out.tolist()):
        assert top_nsigma_mask(logits[len(prompt) - 1 + t], 1.0)[token]
