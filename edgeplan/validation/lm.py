r"""Small decoders that have learned something, trained here in a minute on a synthetic corpus and cached.

Federated attention and cross-region training are judged by quality (next-token loss, agreement with
centralised attention), and speculative decoding by how often a small drafter guesses a target's tokens,
which only trained models show. Nothing is downloaded: the corpus is generated and
the model is a ``transformers`` GPT-2 built from a config.

**Corpus** (:class:`MarkovCorpus`). Each sequence draws a domain :math:`d` of :math:`D`, opens with the
domain's marker token (ids :math:`V..V+D-1`), then a uniform first token and the rest from the domain's
transition matrix :math:`P_d = \mu P_{base} + (1-\mu) Q_d` (rows of both from a sparse Dirichlet). Predicting a
token well needs the domain, which the marker (far back, held by the first participant) and the earlier tokens
reveal: attention over far tokens matters, and cutting it (local attention) costs loss above the entropy floor
of a predictor that knows the domain (:meth:`MarkovCorpus.entropy_floor`).

**Cache.** Trained weights go to ``$EDGEPLAN_CACHE`` (default ``$XDG_CACHE_HOME/edgeplan`` or
``~/.cache/edgeplan``) under a name derived from every setting (:func:`trained_lm`); the next call loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError


def cache_dir() -> Path:
    """``$EDGEPLAN_CACHE``, else ``$XDG_CACHE_HOME/edgeplan``, else ``~/.cache/edgeplan`` (created)."""
    root = os.environ.get("EDGEPLAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "edgeplan")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class MarkovCorpus:
    """Sequences from a mixture of domain Markov chains (module docstring).

    Parameters
    ----------
    vocab, domains
        Token and domain counts.
    concentration
        Dirichlet concentration of the transition rows (small: few likely successors).
    seed
        Seed of the transition matrices (the corpus's identity; samples take their own generator).
    """

    vocab: int = 32
    domains: int = 6
    shared: float = 0.3
    concentration: float = 0.15
    seed: int = 0

    @property
    def n_tokens(self) -> int:
        """The model's vocabulary: ordinary tokens and one marker per domain."""
        return self.vocab + self.domains

    def transitions(self) -> np.ndarray:
        """``(D, V, V)`` row-stochastic :math:`P_d`."""
        rng = np.random.default_rng(self.seed)
        a = np.full(self.vocab, self.concentration)
        base = rng.dirichlet(a, size=self.vocab)
        own = rng.dirichlet(a, size=(self.domains, self.vocab))
        return self.shared * base[None] + (1.0 - self.shared) * own

    def sample(self, n: int, length: int, rng: np.random.Generator, domains: Any = None) -> np.ndarray:
        """``(n, length)`` token ids (marker first); each sequence's domain uniform over ``domains`` (default
        all)."""
        P = self.transitions()
        cum = np.cumsum(P, axis=-1)
        pool = np.arange(self.domains) if domains is None else np.asarray(domains)
        d = rng.choice(pool, size=n)
        out = np.empty((n, length), dtype=np.int64)
        out[:, 0] = self.vocab + d
        out[:, 1] = rng.integers(self.vocab, size=n)
        for t in range(2, length):
            u = rng.random(n)[:, None]
            out[:, t] = np.minimum((cum[d, out[:, t - 1]] < u).sum(axis=1), self.vocab - 1)
        return out

    def entropy_floor(self) -> float:
        """Nats per token of a predictor that knows the domain (the stationary average over domains)."""
        P = self.transitions()
        h = []
        for Pd in P:
            w, v = np.linalg.eig(Pd.T)
            pi = np.abs(np.real(v[:, np.argmin(np.abs(w - 1))]))
            pi /= pi.sum()
            h.append(float(-(pi[:, None] * Pd * np.log(np.maximum(Pd, 1e-300))).sum()))
        return float(np.mean(h))


@dataclass(frozen=True)
class LMConfig:
    """The decoder and its training run (every field is part of the cache key).

    Parameters
    ----------
    n_layer, n_embd, n_head, n_positions
        GPT-2 shape.
    steps, batch, seq, lr
        AdamW steps, sequences per step, sequence length, peak learning rate (cosine decay).
    seed
        Seed of the initialisation and the training samples.
    """

    n_layer: int = 6
    n_embd: int = 64
    n_head: int = 4
    n_positions: int = 128
    steps: int = 800
    batch: int = 32
    seq: int = 64
    lr: float = 3e-3
    seed: int = 0


def decoder(vocab: int, cfg: LMConfig) -> Any:
    """An untrained GPT-2 of ``cfg``'s shape with eager attention (the per-block masks of FedAttn need it)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    conf = GPT2Config(vocab_size=vocab, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                      n_head=cfg.n_head, bos_token_id=0, eos_token_id=0, attn_implementation="eager",
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(conf)


def lm_loss(model: Any, ids: Any) -> Any:
    """Mean next-token cross-entropy (nats) of ``model`` on ``ids``."""
    import torch.nn.functional as F

    logits = model(ids).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def train(model: Any, corpus: MarkovCorpus, cfg: LMConfig, *, steps: int | None = None, domains: Any = None,
          rng: np.random.Generator | None = None) -> list[float]:
    """``steps`` AdamW steps on fresh corpus samples (cosine learning rate); the training losses."""
    import torch

    steps = cfg.steps if steps is None else steps
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s / max(steps, 1), 1))))
    model.train()
    losses = []
    for _ in range(steps):
        ids = torch.from_numpy(corpus.sample(cfg.batch, cfg.seq, rng, domains))
        loss = lm_loss(model, ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def trained_lm(corpus: MarkovCorpus | None = None, cfg: LMConfig | None = None, *,
               domains: Any = None) -> Any:
    """The decoder trained on ``corpus`` with ``cfg``, from the cache or trained now and cached (module
    docstring).

    Parameters
    ----------
    corpus
        The corpus (default :class:`MarkovCorpus`).
    cfg
        The decoder and its training (default :class:`LMConfig`).
    domains
        Train on these domains only (default all): a specialised drafter.

    Returns
    -------
    transformers.GPT2LMHeadModel
        The trained model, in eval mode.
    """
    import torch

    corpus = corpus or MarkovCorpus()
    cfg = cfg or LMConfig()
    if cfg.seq > cfg.n_positions:
        raise ProblemDataError(f"`seq` = {cfg.seq}; expected at most `n_positions` = {cfg.n_positions}")
    spec = [asdict(corpus), asdict(cfg)] + ([] if domains is None else [sorted(int(d) for d in domains)])
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"markov-lm-{key}.pt"
    model = decoder(corpus.n_tokens, cfg)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    train(model, corpus, cfg, domains=domains)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return model.eval()


__all__ = ["LMConfig", "MarkovCorpus", "cache_dir", "decoder", "lm_loss", "train", "trained_lm"]
