"""Small probe models that exercise each op kind, for :func:`edgeplan.profiles.calibration.calibrate_machine`."""

from __future__ import annotations

import torch
from torch import nn

from edgeplan.errors import ProfileError


class _Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.proj(y.transpose(1, 2).reshape(b, s, d))


class _TokenModel(nn.Module):
    def __init__(self, vocab: int, d: int, heads: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(_Attention(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def _conv_net(width: int) -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for i, w in enumerate((width, 2 * width, 4 * width)):
        layers += [nn.Conv2d(c, w, 3, padding=1, stride=2 if i else 1), nn.BatchNorm2d(w), nn.ReLU(),
                   nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers)


class _InvertedResidual(nn.Module):
    def __init__(self, c: int, expand: int = 6) -> None:
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(nn.Conv2d(c, h, 1), nn.BatchNorm2d(h), nn.ReLU6(),
                                  nn.Conv2d(h, h, 3, padding=1, groups=h), nn.BatchNorm2d(h), nn.ReLU6(),
                                  nn.Conv2d(h, c, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _mobile_net(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU6(),
                         *[_InvertedResidual(width) for _ in range(3)], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 10))


def _mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.GELU(),
                         nn.Linear(width, 2 * width), nn.LayerNorm(2 * width), nn.Linear(2 * width, width))


def calibration_probes(scale: str = "small", *, seed: int = 0) -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    """Probe models (eval mode, seeded) with batch-1 example inputs shaped like the zoo's.

    A dense conv net, a MobileNet-style net (depthwise convs), an MLP over a token sequence and a token model
    with attention: together they cover conv, dwconv, linear, attention, embedding, norm, pool and
    element-wise ops, at ``scale`` ``"tiny"`` (unit tests) or ``"small"`` (about 1.5 GFLOP in all).
    """
    if scale not in ("tiny", "small"):
        raise ProfileError(f"`scale` = {scale!r}; expected 'tiny' or 'small'")
    w, img, tokens, d = (8, 32, 16, 32) if scale == "tiny" else (32, 112, 128, 256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probes = {
            "probe-conv": (_conv_net(w).eval(), (torch.randn(1, 3, img, img),)),
            "probe-dwconv": (_mobile_net(w // 2).eval(), (torch.randn(1, 3, img, img),)),
            "probe-mlp": (_mlp(2 * d).eval(), (torch.randn(tokens, 2 * d),)),
            "probe-attention": (_TokenModel(1000, d, 4, 2).eval(), (torch.randint(0, 1000, (1, tokens)),)),
        }
    return probes


__all__ = ["calibration_probes"]
