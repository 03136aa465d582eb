r"""CoCa's cache on real torch models: cache hooks at block outputs, a global cache, early exits, merges.

The pieces that :func:`edgeplan.experiments.cache_periods.validate_cache` puts together:

* :func:`cached_model` cuts a zoo model (``edgeplan.validation.zoo``: ResNet / ViT from ``transformers``
  configs, seeded random weights) into blocks whose outputs are the candidate cache layers, and fits its
  classification head (ridge regression on the pooled last features of a labelled training stream; the
  random head of the zoo model knows nothing of our classes). CNN batch-norm statistics are re-estimated
  on the training stream (train-mode forward passes, no gradient step).
* :class:`ClassStream` draws class-conditional inputs: each class is a fixed prototype (three random
  low-frequency colour gratings), a request is ``a * prototype + noise * N(0, 1)`` with a random
  contrast ``a`` in [0.6, 1.4]. :func:`separability` measures how well the semantic vectors separate the
  classes at every layer (nearest-centre accuracy, relative top-2 margin, Fisher ratio).
* :func:`semantic_vectors` records :math:`u_l(x) = \mathrm{GAP}(f_l(x)) / \|\cdot\|_2` at every block
  output with forward hooks (token mean for a ViT) and the uncached model's predictions, in batches.
* :class:`Executor` serves one request at a time with a plan: it runs the blocks in order and, at each
  active layer, pools, normalises and scores the cached centres (CoCa's accumulated relative-margin rule,
  or the multi-exit softmax-confidence rule), stopping on a hit. It times each request end to end and can
  profile its own block and lookup times (the timing model of the problems).
* :func:`merge_global_cache` is the server's merge of the clients' miss vectors between periods
  [author code, 2025]: :math:`G[l][c] \leftarrow \mathrm{normalize}\big((\rho F_c G[l][c] + U[l][c]) /
  (F_c + n[l][c])\big)`, :math:`F_c \mathrel{+}= f_c`, with :math:`\rho = 0.99`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.validation.zoo import build_model


# -- models cut at cache layers ------------------------------------------------------------------------
class _Stem(torch.nn.Module):
    """Embedding + first block (one cache layer after it); returns a tensor."""

    def __init__(self, embed: torch.nn.Module, first: torch.nn.Module) -> None:
        super().__init__()
        self.embed, self.first = embed, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(self.embed(x))


class _Head(torch.nn.Module):
    """Pooling (+ final norm for a ViT) and the fitted linear classifier."""

    def __init__(self, pool: Callable[[torch.Tensor], torch.Tensor], linear: torch.nn.Linear,
                 norm: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.pool, self.linear, self.norm = pool, linear, norm

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(self.norm(h) if self.norm is not None else h))


def _gap(h: torch.Tensor) -> torch.Tensor:
    return h.mean(dim=(2, 3))


def _token_mean(h: torch.Tensor) -> torch.Tensor:
    return h[:, 1:].mean(dim=1)


@dataclass(frozen=True, eq=False)
class CachedModel:
    """A backbone cut into ``L`` blocks (block ``l`` ends at cache layer ``l``) plus a head (block ``L``)."""

    name: str
    family: str
    blocks: tuple[torch.nn.Module, ...]
    pool: Callable[[torch.Tensor], torch.Tensor]
    head: _Head
    dims: np.ndarray
    input_shape: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def cached_model(name: str = "resnet18", *, size: str = "full", input_size: int | None = 64,
                 seed: int = 0) -> tuple[CachedModel, torch.nn.Module]:
    """Cut zoo model ``name`` at its block outputs; returns the model (head not fitted yet) and the zoo module.

    CNNs (``resnet18``, ``resnet50``): stem + first residual block, then one block per residual block.
    ViTs (``deit_s``): embeddings + first encoder layer, then one block per layer; the token mean (CLS
    excluded) is the semantic vector. ViTs use their configured image size.
    """
    family = {"resnet18": "cnn", "resnet50": "cnn", "deit_s": "vit"}.get(name)
    if family is None:
        raise ProblemDataError(f"`model` = {name!r}; expected one of 'resnet18', 'resnet50', 'deit_s'")
    zm = build_model(name, size=size, seed=seed, input_size=input_size if family == "cnn" else None)
    with torch.no_grad():
        if family == "cnn":
            r = zm.module.resnet
            layers = [layer for stage in r.encoder.stages for layer in stage.layers]
            blocks = [_Stem(r.embedder, layers[0]), *layers[1:]]
            pool, norm = _gap, None
        else:
            v = zm.module.vit
            blocks = [_Stem(v.embeddings, v.layers[0]), *v.layers[1:]]
            pool, norm = _token_mean, v.layernorm
        x = zm.example_inputs[0][:1]
        dims = []
        for b in blocks:
            x = b(x)
            dims.append(pool(x).shape[1])
    head = _Head(pool, torch.nn.Linear(dims[-1], 1), norm)
    model = CachedModel(name=name, family=family, blocks=tuple(blocks), pool=pool, head=head,
                        dims=np.array(dims), input_shape=tuple(zm.example_inputs[0].shape[1:]))
    return model, zm.module


# -- class-structured inputs ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ClassStream:
    """Class-conditional inputs: ``a * prototype[c] + noise * N(0, 1)``, contrast ``a ~ U(0.6, 1.4)``."""

    prototypes: np.ndarray
    noise: float

    @classmethod
    def make(cls, n_classes: int, shape: Sequence[int], noise: float, seed: int) -> ClassStream:
        rng = np.random.default_rng(seed)
        ch, h, w = shape
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        protos = np.zeros((n_classes, ch, h, w))
        for c in range(n_classes):
            for _ in range(3):
                theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
                wave = np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
                protos[c] += rng.normal(size=ch)[:, None, None] * wave
        protos /= protos.std(axis=(1, 2, 3), keepdims=True)
        return cls(prototypes=protos.astype(np.float32), noise=float(noise))

    @property
    def n_classes(self) -> int:
        return int(self.prototypes.shape[0])

    def sample(self, labels: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        labels = np.asarray(labels, dtype=int)
        a = rng.uniform(0.6, 1.4, size=(labels.size, 1, 1, 1))
        x = a * self.prototypes[labels] + self.noise * rng.normal(size=(labels.size, *self.prototypes.shape[1:]))
        return torch.from_numpy(x.astype(np.float32))


# -- recording and fitting ----------------------------------------------------------------------------------
@torch.inference_mode()
def semantic_vectors(model: CachedModel, x: torch.Tensor, *, batch: int = 64,
                     with_head: bool = True) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
    """Unit semantic vectors at every cache layer (via forward hooks), predictions and last pooled features.

    Returns ``(vectors, predictions, last_features)``: ``vectors[l]`` is ``(n, d_l)`` float32; predictions
    are the uncached model's (``None`` without ``with_head``).
    """
    store: list[list[torch.Tensor]] = [[] for _ in model.blocks]
    hooks = [b.register_forward_hook(lambda _m, _i, out, l=l: store[l].append(model.pool(out)))
             for l, b in enumerate(model.blocks)]
    preds, last = [], []
    try:
        for start in range(0, x.shape[0], batch):
            h = x[start:start + batch]
            for b in model.blocks:
                h = b(h)
            if with_head:
                preds.append(model.head(h).argmax(dim=1))
            last.append(model.head.pool(model.head.norm(h)) if model.head.norm is not None else model.pool(h))
    finally:
        for hk in hooks:
            hk.remove()
    vectors = [torch.nn.functional.normalize(torch.cat(s), dim=1).numpy().astype(np.float32) for s in store]
    pred = torch.cat(preds).numpy() if with_head else None
    return vectors, pred, torch.cat(last).numpy()


@torch.inference_mode()
def recalibrate_batchnorm(model: CachedModel, module: torch.nn.Module, x: torch.Tensor, batch: int = 64) -> None:
    """Re-estimate batch-norm running statistics on ``x`` (cumulative average; no parameter changes)."""
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    try:
        for start in range(0, x.shape[0], batch):
            h = x[start:start + batch]
            for b in model.blocks:
                h = b(h)
    finally:
        module.eval()


def fit_head(model: CachedModel, features: np.ndarray, labels: np.ndarray, n_classes: int,
             ridge: float = 1e-1) -> None:
    """Fit the linear head by ridge regression on one-hot targets (closed form)."""
    X = np.hstack([features, np.ones((features.shape[0], 1))]).astype(np.float64)
    Y = np.eye(n_classes)[labels]
    W = np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ Y)
    lin = torch.nn.Linear(features.shape[1], n_classes)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W[:-1].T.astype(np.float32)))
        lin.bias.copy_(torch.from_numpy(W[-1].astype(np.float32)))
    model.head.linear = lin


def class_centres(vectors: Sequence[np.ndarray], labels: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """The global cache :math:`G[l][c]`: normalised mean of :math:`u_l` over the samples of class ``c``."""
    out = []
    onehot = np.eye(n_classes)[labels].T  # (C, n)
    for v in vectors:
        g = onehot @ v.astype(np.float64)
        g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        out.append(g.astype(np.float32))
    return out


def separability(vectors: Sequence[np.ndarray], labels: np.ndarray, centres: Sequence[np.ndarray]) -> dict[str, Any]:
    """Per layer: nearest-centre accuracy, median relative top-2 margin, Fisher ratio (between / within)."""
    acc, margin, fisher = [], [], []
    for v, g in zip(vectors, centres, strict=True):
        s = v @ g.T
        acc.append(float((s.argmax(axis=1) == labels).mean()))
        top = -np.sort(-s, axis=1)[:, :2]
        margin.append(float(np.median((top[:, 0] - top[:, 1]) / np.abs(top[:, 1]))))
        mu = v.mean(axis=0)
        means = np.stack([v[labels == c].mean(axis=0) if (labels == c).any() else mu for c in range(g.shape[0])])
        within = float(((v - means[labels]) ** 2).sum(axis=1).mean())
        between = float(((means[labels] - mu) ** 2).sum(axis=1).mean())
        fisher.append(between / max(within, 1e-12))
    return {"nearest_centre_accuracy": acc, "median_margin": margin, "fisher_ratio": fisher}


def calibrate_threshold(score: np.ndarray, agrees: np.ndarray, target: float) -> float:
    """Smallest threshold whose hits (``score > threshold``) agree with the reference at least ``target``."""
    order = np.argsort(-score, kind="stable")
    prec = np.cumsum(agrees[order]) / np.arange(1, score.size + 1)
    ok = np.flatnonzero(prec >= target)
    if ok.size == 0:
        return float(score.max()) + 1.0
    j = int(ok[-1])
    return float(score[order][j + 1]) if j + 1 < score.size else float(score[order][j]) - 1e-12


def merge_global_cache(centres: list[np.ndarray], freq: np.ndarray, sums: list[np.ndarray], counts: np.ndarray,
                       new_freq: np.ndarray, rho: float = 0.99) -> tuple[list[np.ndarray], np.ndarray]:
    """The server's merge of miss vectors (module docstring); ``counts[l, c]`` vectors summed in ``sums[l][c]``."""
    out = []
    for l, g in enumerate(centres):
        n = counts[l][:, None]
        upd = (rho * freq[:, None] * g + sums[l]) / np.maximum(freq[:, None] + n, 1e-12)
        upd /= np.maximum(np.linalg.norm(upd, axis=1, keepdims=True), 1e-12)
        out.append(np.where(n > 0, upd, g).astype(np.float32))
    return out, freq + new_freq


# -- serving requests with a plan ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """One request: prediction, exit layer (``L`` = full model) and wall-clock latency (s)."""

    label: int
    exit_layer: int
    latency_s: float


CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}


class Executor:
    """Serve requests one at a time with a cache configuration (see the module docstring).

    ``clock="thread"`` (default) times requests with the calling thread's CPU time: on an idle device with
    one compute thread it equals the wall-clock latency, and it is not inflated when other processes share
    the host's cores (set torch to one thread). ``clock="wall"`` uses ``time.perf_counter``.
    """

    def __init__(self, model: CachedModel, clock: str = "thread") -> None:
        if clock not in CLOCKS:
            raise ProblemDataError(f"`clock` = {clock!r}; expected one of {', '.join(map(repr, CLOCKS))}")
        self.model = model
        self.clock = CLOCKS[clock]
        self.configure([], [], [])

    def configure(self, centres: Sequence[np.ndarray], classes: Sequence[int], layers: Sequence[int], *,
                  rule: str = "coca", threshold: float = 0.01, score_base: float = 2.0,
                  temperature: float = 0.05) -> None:
        """Install the client's entries: centres of ``classes`` (in this order) at ``layers``."""
        cls = np.asarray(classes, dtype=int)
        self.classes = cls
        active = set(int(v) for v in layers)
        self.entries = [centres[l][cls] if (l in active and cls.size) else None for l in range(self.model.n_layers)]
        self.rule, self.threshold, self.base, self.temperature = rule, threshold, score_base, temperature

    def _lookup(self, h: torch.Tensor, entry: np.ndarray, acc: np.ndarray | None, j: int) -> tuple[bool, int, Any]:
        u = self.model.pool(h)[0].numpy()
        # elementwise product, not ``entry @ u``: a BLAS call may wake threads that then spin next to torch
        s = (entry * u).sum(axis=1) / np.sqrt((u * u).sum())
        if self.rule == "coca":
            s = s * self.base ** j + (acc if acc is not None else 0.0)
        if s.size < 2:
            return False, -1, s
        i1 = int(np.argmax(s))
        s1 = s[i1]
        s2 = np.max(np.delete(s, i1))
        if self.rule == "coca":
            hit = s1 - s2 > self.threshold * abs(s2)
        else:
            hit = 1.0 / np.exp((s - s1) / self.temperature).sum() >= self.threshold
        return bool(hit), i1, s

    @torch.inference_mode()
    def serve(self, x: torch.Tensor, stamps: list[float] | None = None) -> Served:
        """Run one request (``x`` of batch size 1) with the installed configuration.

        ``stamps`` (profiling) receives the clock before the first block and after every block and lookup.
        """
        clock = self.clock
        t0 = clock()
        if stamps is not None:
            stamps.append(t0)
        h, acc, j = x, None, 0
        for l, block in enumerate(self.model.blocks):
            h = block(h)
            if stamps is not None:
                stamps.append(clock())
            entry = self.entries[l]
            if entry is not None:
                hit, i1, acc = self._lookup(h, entry, acc, j)
                j += 1
                if stamps is not None:
                    stamps.append(clock())
                if hit:
                    return Served(int(self.classes[i1]), l, clock() - t0)
        label = int(self.model.head(h).argmax())
        return Served(label, self.model.n_layers, clock() - t0)

    @torch.inference_mode()
    def profile(self, xs: torch.Tensor, centres: Sequence[np.ndarray], n_classes: int, *,
                repeats: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean block times ``(L+1,)`` and the lookup fit ``g_l + kappa_l k`` (``(L,)`` each), in seconds.

        Measured inside :meth:`serve` itself: uncached requests give the block times (the head's time ends at
        the request's end, so per-request overhead is counted); requests with every layer active and a
        threshold that never hits, with 2 and with ``n_classes`` entries, give each lookup's time after its
        block (a lookup costs more there than alone: cold caches). Configurations alternate per request.
        """
        L = self.model.n_layers
        saved = (self.entries, self.classes, self.threshold)
        ks = (2, max(3, n_classes))
        configs = [[None] * L] + [[centres[l][np.arange(k) % n_classes] for l in range(L)] for k in ks]
        self.classes, self.threshold = np.arange(max(ks)) % n_classes, np.inf
        blocks: list[np.ndarray] = []
        looks: list[list[np.ndarray]] = [[], []]
        try:
            for x in xs[:2]:  # warm-up
                self.entries = configs[0]
                self.serve(x[None])
            for _ in range(repeats):
                for x in xs:
                    for c, entries in enumerate(configs):
                        self.entries = entries
                        stamps: list[float] = []
                        r = self.serve(x[None], stamps)
                        d = np.diff([*stamps, stamps[0] + r.latency_s])
                        if c == 0:
                            blocks.append(d)
                        else:
                            looks[c - 1].append(d[1:2 * L:2])
        finally:
            self.entries, self.classes, self.threshold = saved
        block = np.mean(np.array(blocks), axis=0)
        look = np.stack([np.mean(np.array(v), axis=0) for v in looks])
        kappa = np.maximum((look[1] - look[0]) / (ks[1] - ks[0]), 0.0)
        fixed = np.maximum(look[0] - ks[0] * kappa, 0.0)
        return block, fixed, kappa


__all__ = ["CachedModel", "ClassStream", "Executor", "Served", "cached_model", "calibrate_threshold",
           "class_centres", "fit_head", "merge_global_cache", "recalibrate_batchnorm", "semantic_vectors",
           "separability"]
