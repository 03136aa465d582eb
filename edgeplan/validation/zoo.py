"""A zoo of real PyTorch models built from ``transformers`` config classes, with seeded random weights.

Nothing is downloaded (no ``from_pretrained``) and torchvision is not needed: every architecture is built
from its config class, initialized under ``torch.manual_seed(seed)`` (without touching the caller's RNG
state) and returned in eval mode with example inputs.

Sizes: ``"full"`` is the published architecture at its usual input size (224x224 images, 128 tokens);
``"small"`` keeps the structure at about a quarter of the width and half the depth; ``"tiny"`` is for
unit tests (a few hundred thousand parameters, 32x32 images, 16 tokens).

======================  ============================================  ======================================
name                    full architecture                             transformers classes
======================  ============================================  ======================================
``resnet18``            ResNet-18 (basic blocks 2-2-2-2), 1000 cls    ResNetConfig / ResNetForImageClassification
``resnet50``            ResNet-50 (bottlenecks 3-4-6-3), 1000 cls     ResNetConfig / ResNetForImageClassification
``mobilenet_v2``        MobileNetV2, width 1.0, 1001 cls              MobileNetV2Config / ...ForImageClassification
``deit_s``              ViT-S/16 = DeiT-S (384 wide, 12 layers)       ViTConfig / ViTForImageClassification
``bert_base``           BERT-base (768 wide, 12 layers), 2 labels     BertConfig / BertForSequenceClassification
``gpt2``                GPT-2 small (768 wide, 12 layers), LM head    GPT2Config / GPT2LMHeadModel
``llama_small``         Llama-style decoder (512 wide, 8 layers,      LlamaConfig / LlamaForCausalLM
                        GQA 8/4 heads, SwiGLU 1408, 32k vocab)
======================  ============================================  ======================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgeplan.errors import ProfileError

SIZES = ("full", "small", "tiny")


@dataclass(frozen=True, slots=True)
class ZooModel:
    """A built model with its example inputs.

    Attributes
    ----------
    name, size
        Zoo name and size knob.
    family
        ``"cnn"``, ``"vit"``, ``"encoder"`` or ``"decoder"``.
    module
        The ``torch.nn.Module`` in eval mode.
    example_inputs
        Positional example inputs (batch first).
    config
        The ``transformers`` config it was built from.
    """

    name: str
    size: str
    family: str
    module: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    config: Any = field(repr=False)

    @property
    def num_params(self) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.module.parameters())

    @property
    def batch_size(self) -> int:
        return int(self.example_inputs[0].shape[0])


def _resnet(layer_type: str, size: str) -> tuple[Any, Any, int]:
    from transformers import ResNetConfig, ResNetForImageClassification

    depths = {"basic": [2, 2, 2, 2], "bottleneck": [3, 4, 6, 3]}[layer_type]
    hidden = {"basic": [64, 128, 256, 512], "bottleneck": [256, 512, 1024, 2048]}[layer_type]
    if size == "full":
        cfg = ResNetConfig(layer_type=layer_type, depths=depths, hidden_sizes=hidden, embedding_size=64,
                           num_labels=1000)
        return cfg, ResNetForImageClassification, 224
    if size == "small":
        cfg = ResNetConfig(layer_type=layer_type, depths=[max(1, d // 2) for d in depths],
                           hidden_sizes=[h // 4 for h in hidden], embedding_size=16, num_labels=100)
        return cfg, ResNetForImageClassification, 112
    cfg = ResNetConfig(layer_type=layer_type, depths=[1, 1, 1, 1], hidden_sizes=[h // 16 for h in hidden],
                       embedding_size=8, num_labels=10)
    return cfg, ResNetForImageClassification, 32


def _mobilenet_v2(size: str) -> tuple[Any, Any, int]:
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    mult, image = {"full": (1.0, 224), "small": (0.5, 112), "tiny": (0.35, 32)}[size]
    cfg = MobileNetV2Config(depth_multiplier=mult, image_size=image, num_labels=1001 if size == "full" else 10)
    return cfg, MobileNetV2ForImageClassification, image


def _deit_s(size: str) -> tuple[Any, Any, int]:
    from transformers import ViTConfig, ViTForImageClassification

    hidden, layers, heads, image, patch = {"full": (384, 12, 6, 224, 16), "small": (192, 6, 3, 112, 16),
                                           "tiny": (32, 2, 2, 32, 8)}[size]
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=4 * hidden, image_size=image, patch_size=patch,
                    num_labels=1000 if size == "full" else 10)
    return cfg, ViTForImageClassification, image


def _bert_base(size: str) -> tuple[Any, Any, int]:
    from transformers import BertConfig, BertForSequenceClassification

    hidden, layers, heads, vocab, seq = {"full": (768, 12, 12, 30522, 128), "small": (192, 6, 3, 30522, 64),
                                         "tiny": (32, 2, 2, 1000, 16)}[size]
    cfg = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * hidden, vocab_size=vocab, num_labels=2)
    return cfg, BertForSequenceClassification, seq


def _gpt2(size: str) -> tuple[Any, Any, int]:
    from transformers import GPT2Config, GPT2LMHeadModel

    hidden, layers, heads, vocab, seq = {"full": (768, 12, 12, 50257, 128), "small": (192, 6, 3, 50257, 64),
                                         "tiny": (32, 2, 2, 1000, 16)}[size]
    cfg = GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, vocab_size=vocab, use_cache=False,
                     bos_token_id=vocab - 1, eos_token_id=vocab - 1)
    return cfg, GPT2LMHeadModel, seq


def _llama_small(size: str) -> tuple[Any, Any, int]:
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab, seq = {
        "full": (512, 1408, 8, 8, 4, 32000, 128), "small": (256, 704, 4, 4, 2, 32000, 64),
        "tiny": (32, 64, 2, 2, 1, 1000, 16)}[size]
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                      max_position_embeddings=2048, use_cache=False)
    return cfg, LlamaForCausalLM, seq


_BUILDERS: dict[str, tuple[str, Callable[[str], tuple[Any, Any, int]]]] = {
    "resnet18": ("cnn", lambda s: _resnet("basic", s)),
    "resnet50": ("cnn", lambda s: _resnet("bottleneck", s)),
    "mobilenet_v2": ("cnn", _mobilenet_v2),
    "deit_s": ("vit", _deit_s),
    "bert_base": ("encoder", _bert_base),
    "gpt2": ("decoder", _gpt2),
    "llama_small": ("decoder", _llama_small),
}

ZOO_MODELS = tuple(_BUILDERS)
"""Names accepted by :func:`build_model`."""


def build_model(name: str, *, size: str = "full", batch_size: int = 1, seed: int = 0,
                dtype: torch.dtype = torch.float32, input_size: int | None = None,
                device: str | torch.device = "cpu") -> ZooModel:
    """Build zoo model ``name`` with seeded random weights and seeded example inputs.

    Parameters
    ----------
    name
        One of :data:`ZOO_MODELS`.
    size
        ``"full"``, ``"small"`` or ``"tiny"`` (see the module docstring).
    batch_size
        Batch size of the example inputs.
    seed
        Seeds the weights and the inputs; the caller's global torch RNG state is left untouched.
    dtype
        Floating dtype of parameters and image inputs.
    input_size
        Image side in pixels (vision) or sequence length in tokens (text); default per size.
    device
        Where to build; ``"meta"`` builds shapes only (no memory, no initialization), e.g. to count parameters.
    """
    if name not in _BUILDERS:
        raise ProfileError(f"`name` = {name!r}; expected one of " + ", ".join(map(repr, ZOO_MODELS)))
    if size not in SIZES:
        raise ProfileError(f"`size` = {size!r}; expected one of " + ", ".join(map(repr, SIZES)))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProfileError(f"`batch_size` = {batch_size!r}; expected a positive integer")
    family, builder = _BUILDERS[name]
    cfg, cls, default_input = builder(size)
    n = default_input if input_size is None else int(input_size)
    if n < 1:
        raise ProfileError(f"`input_size` = {input_size!r}; expected a positive integer")
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with dev:
            model = cls(cfg).to(dtype).eval()
        gen = torch.Generator().manual_seed(seed + 1)
        if family in ("cnn", "vit"):
            inputs: tuple[torch.Tensor, ...] = (torch.randn(batch_size, 3, n, n, generator=gen, dtype=dtype),)
        else:
            inputs = (torch.randint(0, cfg.vocab_size, (batch_size, n), generator=gen),)
        inputs = tuple(t.to(dev) for t in inputs)
    return ZooModel(name=name, size=size, family=family, module=model, example_inputs=inputs, config=cfg)


#: The sizes whose profiles ship with the package (``edgeplan/profiles/data/zoo/``).
SHIPPED_SIZES = ("full", "small")


def shipped_profile_name(name: str, size: str) -> str:
    """The preset name of a shipped zoo profile: ``gpt2`` (full size), ``gpt2-small``."""
    return name if size == "full" else f"{name}-{size}"


def zoo_profile(name: str, size: str = "full") -> Any:
    """The FLOP-and-byte profile (no timings) of a zoo model, as shipped in ``profiles/data/zoo``.

    Forward and backward FLOPs per block, activation and weight bytes, from a trace of the model built at
    batch 1 with seed 0 (:func:`build_model`); ``meta["zoo"]`` records the build. Timings come from the device
    presets' peak rates when a problem uses it, or from :func:`edgeplan.validation.partition.execute.profile_zoo`
    measured on this host.

    Parameters
    ----------
    name
        A zoo model (:data:`ZOO_MODELS`).
    size
        ``"full"``, ``"small"`` or ``"tiny"``.

    Returns
    -------
    ModelProfile
    """
    from edgeplan.profiles.profiler import profile_model

    z = build_model(name, size=size)
    prof = profile_model(z.module, z.example_inputs, name=shipped_profile_name(name, size), timing=False,
                         progress=False)
    return dataclasses.replace(prof, meta={**prof.meta, "zoo": {"name": name, "size": size, "batch_size": 1,
                                                                  "seed": 0}})


def write_zoo_profiles(out_dir: str | Path) -> list[Path]:
    """Write :func:`zoo_profile` of every zoo model at every :data:`SHIPPED_SIZES` into ``out_dir``.

    The maintainers' command that makes the shipped profiles: ``python -m edgeplan.validation.zoo DIR``
    (``tests/profiles/test_zoo_profiles.py`` checks that the shipped files equal a fresh trace).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [zoo_profile(n, s).save(out / f"{shipped_profile_name(n, s)}.json")
            for n in ZOO_MODELS for s in SHIPPED_SIZES]


__all__ = ["SHIPPED_SIZES", "SIZES", "ZOO_MODELS", "ZooModel", "build_model", "shipped_profile_name",
           "write_zoo_profiles", "zoo_profile"]


if __name__ == "__main__":  # pragma: no cover - the maintainers' command
    import sys

    for written in write_zoo_profiles(sys.argv[1] if len(sys.argv) > 1 else "edgeplan/profiles/data/zoo"):
        print(written)
