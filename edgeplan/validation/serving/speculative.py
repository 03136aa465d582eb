r"""Speculative decoding with real models: draft :math:`k` tokens with a small model, verify them with the target
in one forward pass, accept or resample.

**Rule** (Leviathan et al. 2023; Chen et al. 2023). With the drafter's distributions :math:`q_i` and the
target's :math:`p_i` at the drafted positions, draft token :math:`x_i` is accepted with probability
:math:`\min(1, p_i(x_i)/q_i(x_i))`; at the first rejection the emitted token is drawn from
:math:`\mathrm{norm}(\max(0, p_i - q_i))`, and when all :math:`k` are accepted a bonus token is drawn from
:math:`p_{k+1}`. Every emitted token then has the target's distribution (:func:`verify_draft`; the tests check
it with a chi-square test). With greedy decoding a draft token is accepted while it equals the target's argmax,
and the output equals the target's own greedy output.

Both models see the same processed distributions: temperature and an optional logits processor
(:class:`~edgeplan.validation.serving.top_nsigma.TopNSigma`) are applied to each before the rule.
Sequences are short here, so every forward pass recomputes the prefix (no K/V cache): simple and exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError


@dataclass
class DecodeStats:
    """What one speculative generation did.

    Attributes
    ----------
    steps
        Draft-verify steps.
    drafted, accepted, examined
        Draft tokens proposed, accepted, and examined by the target (the accepted ones plus each step's
        rejected one).
    per_step
        Accepted draft tokens of each step.
    """

    steps: int = 0
    drafted: int = 0
    accepted: int = 0
    examined: int = 0
    per_step: list[int] = field(default_factory=list)

    def record(self, accepted: int, k: int, drafted: int) -> None:
        """One step: ``accepted`` of ``k`` draft positions accepted, ``drafted`` draft tokens proposed."""
        self.steps += 1
        self.drafted += drafted
        self.accepted += accepted
        self.examined += accepted + (accepted < k)
        self.per_step.append(accepted)

    @property
    def acceptance(self) -> float:
        """Accepted over examined draft tokens: the maximum-likelihood :math:`\\alpha` of i.i.d. acceptance."""
        return self.accepted / self.examined if self.examined else 0.0


def distributions(model: Any, ids: Any, last: int, temperature: float,
                  processor: Callable[[Any, Any], Any] | None = None) -> np.ndarray:
    """``(last, V)`` next-token distributions of ``model`` at the last ``last`` positions of ``ids`` (1-D)."""
    import torch

    with torch.no_grad():
        logits = model(ids[None]).logits[0, -last:].double()
    if processor is not None:
        logits = processor(ids[None].expand(last, -1), logits)
    if temperature == 0:
        out = torch.zeros_like(logits)
        out[torch.arange(last), logits.argmax(-1)] = 1.0
        return out.numpy()
    return torch.softmax(logits / temperature, dim=-1).numpy()


def _draw(dist: np.ndarray, temperature: float, rng: np.random.Generator | None) -> int:
    """The argmax at temperature 0, else a sample of ``dist``."""
    if temperature == 0 or rng is None:
        return int(np.argmax(dist))
    return int(rng.choice(dist.size, p=dist / dist.sum()))


def verify_tree(p: list[np.ndarray], chains: list[list[int]], qs: list[list[np.ndarray]], temperature: float,
                rng: np.random.Generator | None) -> tuple[list[int], int]:
    """Walk the token tree of ``chains``: ``(accepted tokens, next token)``. At each node the chains through it
    offer their next tokens in turn, each accepted with :math:`\\min(1, p/q_j)`, :math:`p` replaced by the
    residual after a rejection (SpecInfer's multi-step speculative sampling; one chain is the rule of the module
    docstring); greedy: the candidate equal to the target's argmax.

    Parameters
    ----------
    p
        Per chain, ``(k + 1, V)`` the target's distributions after each prefix of the chain.
    chains, qs
        Per chain, its tokens and the drafter's distributions they were drawn from.
    temperature
        0: greedy acceptance.
    rng
        The acceptance draws (unused, may be None, when greedy).
    """
    alive = list(range(len(chains)))
    accepted: list[int] = []
    depth = 0
    while True:
        target = p[alive[0]][depth].copy()  # every live chain shares this prefix
        live = [j for j in alive if depth < len(chains[j])]
        if not live:  # all chains end here: the bonus token
            return accepted, _draw(target, temperature, rng)
        chosen = None
        for j in live:
            x = chains[j][depth]
            if temperature == 0:
                if x == int(np.argmax(target)):
                    chosen = x
                    break
                continue
            q = qs[j][depth]
            if rng.random() * q[x] <= target[x]:
                chosen = x
                break
            resid = np.maximum(target - q, 0.0)
            total = resid.sum()
            if total <= 0:  # q covers p: nothing left to correct with; p itself remains the law
                continue
            target = resid / total
        if chosen is None:
            return accepted, _draw(target, temperature, rng)
        accepted.append(chosen)
        alive = [j for j in live if chains[j][depth] == chosen]
        depth += 1


def verify_draft(p: np.ndarray, q: np.ndarray, draft: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """The accept/resample rule of the module docstring: ``(accepted drafts, next token)`` (one chain of
    :func:`verify_tree`).

    Parameters
    ----------
    p
        ``(k + 1, V)`` the target's distributions at the drafted positions and the one after.
    q
        ``(k, V)`` the drafter's distributions the drafts were drawn from.
    draft
        ``(k,)`` the drafted tokens.
    """
    accepted, token = verify_tree([p], [np.asarray(draft).tolist()], [list(q)], 1.0, rng)
    return len(accepted), token


def greedy_verify(p: np.ndarray, draft: np.ndarray) -> tuple[int, int]:
    """Greedy verification: drafts accepted while they equal the target's argmax; then the target's token."""
    accepted, token = verify_tree([p], [np.asarray(draft).tolist()], [[]], 0.0, None)
    return len(accepted), token


def speculative_generate(target: Any, drafter: Any, prompt: Any, max_new: int, k: int, *, temperature: float = 0.0,
                         processor: Callable[[Any, Any], Any] | None = None,
                         rng: np.random.Generator | None = None) -> tuple[np.ndarray, DecodeStats]:
    """Generate ``max_new`` tokens after ``prompt`` by drafting ``k`` at a time.

    Parameters
    ----------
    target, drafter
        Causal LMs over one vocabulary (``model(ids).logits``).
    prompt
        1-D token ids.
    max_new, k
        Tokens to generate and draft tokens per step.
    temperature
        0: greedy; else both models' logits are divided by it.
    processor
        A ``transformers`` logits processor applied to both models (e.g. :class:`TopNSigma`).
    rng
        The generator of the draft samples and the acceptance draws.

    Returns
    -------
    tokens, stats
        The generated tokens (without the prompt) and a :class:`DecodeStats`.
    """
    import torch

    if k < 1 or max_new < 1:
        raise ProblemDataError(f"`k` = {k}, `max_new` = {max_new}; expected both >= 1")
    rng = np.random.default_rng(0) if rng is None else rng

    def step(ids: Any, kk: int) -> tuple[list[int], int, int]:
        seq, q = ids, []
        for _ in range(kk):
            dist = distributions(drafter, seq, 1, temperature, processor)[0]
            x = int(np.argmax(dist)) if temperature == 0 else int(rng.choice(dist.size, p=dist / dist.sum()))
            q.append(dist)
            seq = torch.cat([seq, torch.tensor([x])])
        draft = seq[ids.numel():].numpy()
        p = distributions(target, seq, kk + 1, temperature, processor)
        n_ok, token = greedy_verify(p, draft) if temperature == 0 else verify_draft(p, np.array(q), draft, rng)
        return draft[:n_ok].tolist(), token, kk

    return decode_loop(prompt, max_new, k, step)


def decode_loop(prompt: Any, max_new: int, k: int,
                step: Callable[[Any, int], tuple[list[int], int, int]]) -> tuple[np.ndarray, DecodeStats]:
    """Generate ``max_new`` tokens after ``prompt``, ``step(ids, k) -> (accepted drafts, next token, tokens
    drafted)`` at a time with at most ``k`` draft positions; the tokens and the :class:`DecodeStats`."""
    import torch

    ids = torch.as_tensor(np.asarray(prompt), dtype=torch.long)
    stats = DecodeStats()
    out: list[int] = []
    while len(out) < max_new:
        kk = min(k, max_new - len(out))
        accepted, token, drafted = step(ids, kk)
        new = [*accepted, token][: max_new - len(out)]
        out += new
        ids = torch.cat([ids, torch.tensor(new)])
        stats.record(len(accepted), kk, drafted)
    return np.array(out), stats


def measure_acceptance(target: Any, drafters: list[Any], corpus: Any, *, prompts: int = 8, prompt_len: int = 12,
                       new_tokens: int = 24, k: int = 4, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``(J, D)`` measured acceptance rates :math:`\\alpha_{jd}` (accepted over examined drafts), from real
    speculative generation.

    Parameters
    ----------
    target, drafters
        The target and the :math:`J` drafters.
    corpus
        A :class:`~edgeplan.validation.lm.MarkovCorpus`; prompts of each domain come from it.
    prompts, prompt_len, new_tokens, k, temperature, seed
        Prompts per domain, their length, tokens generated per prompt, draft length, sampling temperature,
        seed.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((len(drafters), corpus.domains))
    for d in range(corpus.domains):
        batch = corpus.sample(prompts, prompt_len, rng, domains=[d])
        for j, drafter in enumerate(drafters):
            ok = seen = 0
            for pr in batch:
                _, st = speculative_generate(target, drafter, pr, new_tokens, k, temperature=temperature, rng=rng)
                ok += st.accepted
                seen += st.examined
            out[j, d] = ok / seen if seen else 0.0
    return out


def greedy_generate(model: Any, prompt: Any, max_new: int) -> np.ndarray:
    """The model's own greedy continuation (the reference of greedy speculative decoding)."""
    import torch

    ids = torch.as_tensor(np.asarray(prompt), dtype=torch.long)
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            x = int(model(ids[None]).logits[0, -1].argmax())
            out.append(x)
            ids = torch.cat([ids, torch.tensor([x])])
    return np.array(out)


__all__ = [
    "DecodeStats",
    "decode_loop",
    "distributions",
    "greedy_generate",
    "greedy_verify",
    "measure_acceptance",
    "speculative_generate",
    "verify_draft",
    "verify_tree",
]
