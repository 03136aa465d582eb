r"""Real federated training: the model, synthetic non-IID user data, local SGD epochs and FedAvg.

Used by :func:`edgeplan.validation.fl.execute.validate_fl_round` (one planned round run for real) and by the
multi-round simulation with training on (:func:`edgeplan.experiments.fl_rounds.simulate_fl`, ``train=``).

Models
------
``"fmnist_cnn"`` is the FashionMNIST CNN of the DAGSA author code (``docs/models/fl.md``): conv 1->10 (5x5),
max-pool, conv 10->20 (5x5), max-pool, fc 320->50, fc 50->10 with ReLUs, 21,840 parameters, so its fp16
upload is the paper's :math:`Z` = 349,440 bits. Every :data:`~edgeplan.validation.zoo.ZOO_MODELS` name is
accepted too (built from its ``transformers`` config, ``size`` as in the zoo); classifiers are trained with
cross-entropy on their logits, decoders (``gpt2``, ``llama_small``) as language models.

Synthetic data (nothing is downloaded)
--------------------------------------
Class :math:`c` has a smooth template :math:`\mu_c` (Gaussian noise at 1/4 resolution, bilinearly upsampled
and standardized); a sample is :math:`x = \mu_c + \sigma\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`
(``noise`` :math:`\sigma`). Token models draw each token from the class's own slice of the vocabulary with
probability :math:`1 - \sigma/(1 + \sigma)`, else uniformly. User :math:`n`'s labels follow its class mix
:math:`\pi_n \sim \mathrm{Dir}(\alpha\mathbf 1_C)` (``alpha``: small is non-IID, large is IID). A user's data
depend only on ``(seed, user)``, so the same user holds the same samples in every round; the test set is
class-balanced and disjoint in its random stream.

Local training and aggregation
------------------------------
:func:`local_train` runs :math:`E` epochs of minibatch SGD (reshuffled every epoch; the last batch of an
epoch may be short), so an epoch over :math:`D` samples is :math:`\lceil D/B\rceil` steps. An ``on_step``
hook sees every step's duration (the validator throttles emulated slower devices through it).
:func:`fedavg` is McMahan et al.'s sample-weighted average :math:`w = \sum_n D_n w_n / \sum_n D_n`
(integer buffers are taken from the first state). Uploads are the real ``torch.save`` bytes of the state
dict with floating tensors in the upload precision (:func:`state_bytes`).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgeplan._checks import as_scalar
from edgeplan.errors import ProblemDataError

FL_MODELS = ("fmnist_cnn", "resnet18", "resnet50", "mobilenet_v2", "deit_s", "bert_base", "gpt2", "llama_small")
"""Model names :func:`fl_task` accepts."""
UPLOAD_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class FMNISTCNN(torch.nn.Module):
    """The DAGSA author code's FashionMNIST CNN (21,840 parameters, inputs ``(B, 1, 28, 28)``)."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 10, 5)
        self.conv2 = torch.nn.Conv2d(10, 20, 5)
        self.fc1 = torch.nn.Linear(320, 50)
        self.fc2 = torch.nn.Linear(50, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.max_pool2d(self.conv2(x), 2))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: unchanged), then restore the old count."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _seeded(*keys: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(keys)).generate_state(1)[0]))


@dataclass(frozen=True, slots=True, eq=False)
class FLTask:
    """A model to train federatedly and the synthetic data of its users (build with :func:`fl_task`).

    Attributes
    ----------
    name, size
        Model name (:data:`FL_MODELS`) and zoo size.
    kind
        ``"image"``, ``"tokens"`` (sequence classification) or ``"lm"`` (next-token prediction).
    input_shape
        One sample's shape (``(C, H, W)`` or ``(L,)``).
    n_classes
        Classes of the synthetic task (for ``"lm"``: vocabulary slices that shape the token streams).
    vocab_size
        Token models' vocabulary (0 for images).
    noise, alpha, seed
        Data noise :math:`\\sigma`, Dirichlet concentration :math:`\\alpha` and the seed of everything.
    """

    name: str
    size: str
    kind: str
    input_shape: tuple[int, ...]
    n_classes: int
    vocab_size: int
    noise: float
    alpha: float
    seed: int
    make_module: Callable[[], torch.nn.Module] = field(repr=False)
    _templates: torch.Tensor | None = field(default=None, repr=False)

    def new_model(self) -> torch.nn.Module:
        """A freshly initialized model (the same weights for the same ``seed``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.make_module()

    def class_mix(self, user: int) -> np.ndarray:
        """``(C,)`` user ``user``'s label distribution :math:`\\pi_n \\sim \\mathrm{Dir}(\\alpha)`."""
        rng = np.random.default_rng([self.seed, 1, int(user)])
        return rng.dirichlet(np.full(self.n_classes, self.alpha))

    def _samples(self, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = labels.shape[0]
        if self.kind == "image":
            x = self._templates[labels] + self.noise * torch.randn((n, *self.input_shape), generator=gen)
            return x
        width = max(self.vocab_size // self.n_classes, 1)
        own = labels[:, None] * width + torch.randint(0, width, (n, *self.input_shape), generator=gen)
        anywhere = torch.randint(0, self.vocab_size, (n, *self.input_shape), generator=gen)
        mix = torch.rand((n, *self.input_shape), generator=gen) < self.noise / (1.0 + self.noise)
        return torch.where(mix, anywhere, own % self.vocab_size)

    def user_data(self, user: int, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """User ``user``'s ``n_samples`` samples and labels (deterministic in ``(seed, user)``)."""
        n = int(n_samples)
        if n < 0:
            raise ProblemDataError(f"`n_samples` = {n_samples!r}; expected a non-negative sample count")
        gen = _seeded(self.seed, 2, int(user))
        mix = torch.as_tensor(self.class_mix(user), dtype=torch.float64)
        labels = torch.multinomial(mix, n, replacement=True, generator=gen) if n else torch.zeros(0, dtype=torch.long)
        return self._samples(labels, gen), labels

    def test_data(self, n_samples: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """A class-balanced test set (its own random stream)."""
        gen = _seeded(self.seed, 3)
        labels = torch.arange(int(n_samples)) % self.n_classes
        return self._samples(labels, gen), labels

    def loss(self, module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the model's logits (``"lm"``: next-token loss on ``x``)."""
        if self.kind == "lm":
            return module(input_ids=x, labels=x).loss
        return torch.nn.functional.cross_entropy(self.logits(module, x), y)

    def logits(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = module(x)
        return out if isinstance(out, torch.Tensor) else out.logits

    def accuracy(self, module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
        """Top-1 accuracy on ``(x, y)`` (``nan`` for language models)."""
        if self.kind == "lm" or y.numel() == 0:
            return float("nan")
        was = module.training
        module.eval()
        hits = 0
        with torch.no_grad():
            for i in range(0, y.shape[0], batch_size):
                hits += int((self.logits(module, x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
        module.train(was)
        return hits / y.shape[0]


def fl_task(model: str = "fmnist_cnn", *, size: str = "tiny", n_classes: int = 10, noise: float = 3.0,
            alpha: float = 0.5, seed: int = 0) -> FLTask:
    """The FL task of ``model`` (see the module docstring) with seeded synthetic data."""
    if model not in FL_MODELS:
        raise ProblemDataError(f"`model` = {model!r}; expected one of " + ", ".join(map(repr, FL_MODELS)))
    noise = as_scalar("noise", noise, min_value=0.0)
    alpha = as_scalar("alpha", alpha, min_value=0.0, strict_min=True)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ProblemDataError(f"`n_classes` = {n_classes!r}; expected an integer >= 2")
    if model == "fmnist_cnn":
        kind, shape, vocab = "image", (1, 28, 28), 0

        def make() -> torch.nn.Module:
            return FMNISTCNN(n_classes)
    else:
        from edgeplan.validation.zoo import build_model

        meta = build_model(model, size=size, device="meta")
        cfg = meta.config
        shape = tuple(meta.example_inputs[0].shape[1:])
        kind = {"cnn": "image", "vit": "image", "encoder": "tokens", "decoder": "lm"}[meta.family]
        vocab = int(getattr(cfg, "vocab_size", 0) or 0) if kind != "image" else 0
        if kind != "lm":
            n_classes = min(n_classes, int(cfg.num_labels))

        def make() -> torch.nn.Module:
            return build_model(model, size=size, seed=seed).module
    templates = None
    if kind == "image":
        c, h, w = shape
        low = torch.randn((n_classes, c, max(h // 4, 1), max(w // 4, 1)), generator=_seeded(seed, 0))
        t = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        templates = (t - t.mean(dim=(1, 2, 3), keepdim=True)) / t.std(dim=(1, 2, 3), keepdim=True)
    return FLTask(name=model, size=size, kind=kind, input_shape=shape, n_classes=n_classes, vocab_size=vocab,
                  noise=noise, alpha=alpha, seed=int(seed), make_module=make, _templates=templates)


# -- local training and aggregation -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LocalRun:
    """What :func:`local_train` did: steps, samples seen, first and last minibatch loss, wall-clock seconds."""

    steps: int
    samples: int
    first_loss: float
    last_loss: float
    seconds: float


def local_train(module: torch.nn.Module, task: FLTask, x: torch.Tensor, y: torch.Tensor, *, epochs: float,
                batch_size: int = 32, lr: float = 0.05, seed: int = 0,
                on_step: Callable[[float], None] | None = None, device: str | torch.device = "cpu") -> LocalRun:
    """``epochs`` epochs of SGD on ``(x, y)`` in place (a fractional last epoch covers that share of the data).

    ``on_step(seconds)`` is called after each step with its duration (synchronized on CUDA).
    """
    dev = torch.device(device)
    n = int(y.shape[0])
    total = round(float(epochs) * n)
    opt = torch.optim.SGD(module.parameters(), lr=lr)
    module.train()
    gen = _seeded(task.seed, 4, seed)
    first = last = float("nan")
    steps = done = 0
    t0 = time.perf_counter()
    while done < total:
        order = torch.randperm(n, generator=gen)[: total - done]
        for i in range(0, order.numel(), batch_size):
            s0 = time.perf_counter()
            idx = order[i:i + batch_size]
            xb, yb = x[idx].to(dev, non_blocking=True), y[idx].to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = task.loss(module, xb, yb)
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            last = float(loss.detach())
            first = last if steps == 0 else first
            steps += 1
            if on_step is not None:
                on_step(time.perf_counter() - s0)
        done += order.numel()
    return LocalRun(steps=steps, samples=done, first_loss=first, last_loss=last, seconds=time.perf_counter() - t0)


def state_bytes(module: torch.nn.Module | Mapping[str, torch.Tensor], dtype: str = "fp16") -> bytes:
    """``torch.save`` bytes of the state dict with floating tensors cast to ``dtype`` (the upload)."""
    if dtype not in UPLOAD_DTYPES:
        raise ProblemDataError(f"`dtype` = {dtype!r}; expected one of " + ", ".join(map(repr, UPLOAD_DTYPES)))
    state = module.state_dict() if isinstance(module, torch.nn.Module) else module
    cast = {k: (v.detach().to("cpu", UPLOAD_DTYPES[dtype]) if v.is_floating_point() else v.detach().cpu())
            for k, v in state.items()}
    buf = io.BytesIO()
    torch.save(cast, buf)
    return buf.getvalue()


def load_state_bytes(payload: bytes) -> dict[str, torch.Tensor]:
    """Inverse of :func:`state_bytes` (floating tensors back in float32)."""
    state = torch.load(io.BytesIO(payload), weights_only=True)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Sample-weighted average of state dicts (integer tensors are taken from the first)."""
    if not states:
        raise ProblemDataError("`states` is empty; expected at least one state dict to average")
    w = torch.as_tensor(np.asarray(weights, dtype=float), dtype=torch.float64)
    if w.numel() != len(states) or not torch.isfinite(w).all() or (w < 0).any() or float(w.sum()) <= 0:
        raise ProblemDataError(f"`weights` = {list(map(float, weights))}; expected {len(states)} non-negative "
                               "numbers with a positive sum")
    w = w / w.sum()
    out = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            acc = sum(float(wi) * s[key].double() for wi, s in zip(w, states, strict=True))
            out[key] = acc.to(ref.dtype)
        else:
            out[key] = ref.clone()
    return out


class FLTrainer:
    """Real FedAvg across rounds: each round the selected users train the global model on their own data and
    the server averages their uploads (in the upload precision) weighted by sample counts.

    Parameters
    ----------
    task
        The model and data (:func:`fl_task`); the global model starts from ``task.new_model()``.
    batch_size, lr, dtype
        Local SGD and the upload precision.
    test_samples
        Size of the class-balanced test set scored after every round.
    threads
        Torch intra-op threads while training (``None``: unchanged).
    """

    def __init__(self, task: FLTask, *, batch_size: int = 32, lr: float = 0.05, dtype: str = "fp16",
                 test_samples: int = 1000, threads: int | None = 1) -> None:
        if dtype not in UPLOAD_DTYPES:
            raise ProblemDataError(f"`dtype` = {dtype!r}; expected one of " + ", ".join(map(repr, UPLOAD_DTYPES)))
        self.task, self.batch_size, self.lr, self.dtype, self.threads = task, int(batch_size), float(lr), dtype, threads
        self.model = task.new_model()
        self.x_test, self.y_test = task.test_data(test_samples)
        self.rounds = 0

    def accuracy(self) -> float:
        """Test accuracy of the global model."""
        return self.task.accuracy(self.model, self.x_test, self.y_test)

    def round(self, users: Sequence[int], samples: Any, epochs: Any) -> float:
        """Train ``users`` (``samples[n]`` samples, ``epochs[n]`` epochs each), aggregate; return the accuracy."""
        with torch_threads(self.threads):
            states, weights = [], []
            for n in users:
                local = copy.deepcopy(self.model)
                d = round(float(samples[n]))
                x, y = self.task.user_data(int(n), d)
                local_train(local, self.task, x, y, epochs=float(epochs[n]), batch_size=self.batch_size, lr=self.lr,
                            seed=self.rounds * 100_003 + int(n))
                states.append(load_state_bytes(state_bytes(local, self.dtype)))
                weights.append(d)
            if states and sum(weights) > 0:
                self.model.load_state_dict(fedavg(states, weights))
            self.rounds += 1
            return self.accuracy()


def model_bits(module: torch.nn.Module, dtype: str = "fp16") -> float:
    """Bits of the module's parameters in ``dtype`` (what :func:`~edgeplan.formulations.fl.common.payload_bits_of`
    counts): :math:`8\\,\\mathrm{bytes}(d) \\sum_v n_v`."""
    return 8.0 * UPLOAD_DTYPES[dtype].itemsize * sum(p.numel() for p in module.parameters())


__all__ = [
    "FL_MODELS",
    "FMNISTCNN",
    "UPLOAD_DTYPES",
    "FLTask",
    "FLTrainer",
    "LocalRun",
    "fedavg",
    "fl_task",
    "load_state_bytes",
    "local_train",
    "model_bits",
    "state_bytes",
    "torch_threads",
]
