r"""Caesar's two codecs on real tensors, encoded to the bytes that cross the wire.

Per tensor of :math:`n` entries at ratio :math:`\theta`, :math:`q = \lfloor \theta n \rfloor` entries (the
smallest in magnitude) are compressed and :math:`k = n - q` kept (``torch.topk`` on :math:`|x|`). With
:math:`q = 0` the tensor goes dense as float32. Otherwise the payload is the bitmap of kept positions
(``numpy.packbits``) and the kept float32 values, and for the download also one sign bit per compressed entry
and two float32 scalars: the mean and the largest magnitude of the compressed entries. Its length is exactly
:func:`edgeplan.formulations.compression.wire.upload_bytes` / ``download_bytes`` (a test checks it).

Decoding: the upload's compressed entries are zeros (top-k sparsification). The download's compressed entry
:math:`j` with sign :math:`s_j` is recovered from the device's stale local copy: :math:`w^{loc}_j` when it has the
same sign and :math:`|w^{loc}_j| \le` the largest magnitude, else :math:`s_j \cdot` the mean magnitude (Caesar's
low-deviation rule, as a re-implementation reads it).

Deviation: :math:`\|x - \hat x\|^2 / \|x\|^2` (the upload's equals the top-k error profile at :math:`\theta`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from edgeplan._checks import as_scalar


def _split(x: torch.Tensor, theta: float) -> tuple[np.ndarray, int]:
    """``(kept mask, q)`` of a flat tensor at ratio ``theta``."""
    n = x.numel()
    q = int(np.floor(float(theta) * n + 1e-9))
    mask = np.zeros(n, dtype=bool)
    if q < n:
        mask[torch.topk(x.abs(), n - q, sorted=False).indices.numpy()] = True
    return mask, q


def _ratio(theta: Any) -> float:
    return float(as_scalar("theta", theta, min_value=0.0, max_value=1.0 - 1e-12))


def topk_encode(x: torch.Tensor, theta: float) -> bytes:
    """The upload payload of ``x`` at ratio ``theta`` (module docstring).

    Parameters
    ----------
    x
        The tensor.
    theta
        The ratio.
    """
    flat = x.detach().reshape(-1).float().cpu()
    mask, q = _split(flat, _ratio(theta))
    if q == 0:
        return flat.numpy().astype("<f4").tobytes()
    return np.packbits(mask).tobytes() + flat.numpy()[mask].astype("<f4").tobytes()


def topk_decode(payload: bytes, shape: Any, theta: float) -> torch.Tensor:
    """The upload decoded: the kept entries, zeros elsewhere.

    Parameters
    ----------
    payload
        What :func:`topk_encode` produced.
    shape
        The tensor's shape.
    theta
        The ratio it was encoded at.
    """
    n = int(np.prod(shape))
    q = int(np.floor(_ratio(theta) * n + 1e-9))
    if q == 0:
        return torch.from_numpy(np.frombuffer(payload, dtype="<f4").copy()).reshape(shape)
    nb = -(-n // 8)
    mask = np.unpackbits(np.frombuffer(payload[:nb], dtype=np.uint8), count=n).astype(bool)
    out = np.zeros(n, dtype=np.float32)
    out[mask] = np.frombuffer(payload[nb:], dtype="<f4")
    return torch.from_numpy(out).reshape(shape)


def caesar_encode(x: torch.Tensor, theta: float) -> bytes:
    """The download payload of ``x`` at ratio ``theta`` (module docstring).

    Parameters
    ----------
    x
        The tensor.
    theta
        The ratio.
    """
    flat = x.detach().reshape(-1).float().cpu()
    mask, q = _split(flat, _ratio(theta))
    arr = flat.numpy()
    if q == 0:
        return arr.astype("<f4").tobytes()
    small = arr[~mask]
    mags = np.abs(small)
    return (np.packbits(mask).tobytes() + arr[mask].astype("<f4").tobytes() + np.packbits(small < 0).tobytes()
            + struct.pack("<ff", float(mags.mean()), float(mags.max())))


def caesar_decode(payload: bytes, local: torch.Tensor, theta: float) -> torch.Tensor:
    """The download decoded against the device's stale ``local`` copy (Caesar's recovery rule).

    Parameters
    ----------
    payload
        What :func:`caesar_encode` produced.
    local
        The device's stale copy of the tensor (its shape is the tensor's).
    theta
        The ratio it was encoded at.
    """
    shape = local.shape
    loc = local.detach().reshape(-1).float().cpu().numpy()
    n = loc.size
    q = int(np.floor(_ratio(theta) * n + 1e-9))
    if q == 0:
        return torch.from_numpy(np.frombuffer(payload, dtype="<f4").copy()).reshape(shape)
    nb, k = -(-n // 8), n - q
    mask = np.unpackbits(np.frombuffer(payload[:nb], dtype=np.uint8), count=n).astype(bool)
    kept = np.frombuffer(payload[nb:nb + 4 * k], dtype="<f4")
    neg = np.unpackbits(np.frombuffer(payload[nb + 4 * k: nb + 4 * k + -(-q // 8)], dtype=np.uint8),
                        count=q).astype(bool)
    mean, top = struct.unpack("<ff", payload[-8:])
    sign = np.where(neg, -1.0, 1.0).astype(np.float32)
    stale = loc[~mask]
    keep = (np.sign(stale) == sign) & (np.abs(stale) <= top)
    out = np.empty(n, dtype=np.float32)
    out[mask] = kept
    out[~mask] = np.where(keep, stale, sign * mean)
    return torch.from_numpy(out).reshape(shape)


def deviation(x: Mapping[str, torch.Tensor] | torch.Tensor, approx: Mapping[str, torch.Tensor] | torch.Tensor) -> float:
    """:math:`\\|x - \\hat x\\|^2 / \\|x\\|^2` over one tensor or every floating tensor of a state (0 for zero).

    Parameters
    ----------
    x
        The original (a tensor or a state dict).
    approx
        Its reconstruction.
    """
    xs = [x] if isinstance(x, torch.Tensor) else [v for v in x.values() if v.is_floating_point()]
    ys = [approx] if isinstance(approx, torch.Tensor) else [approx[k] for k, v in x.items() if v.is_floating_point()]
    num = sum(float(((a.float() - b.float()) ** 2).sum()) for a, b in zip(xs, ys, strict=True))
    den = sum(float((a.float() ** 2).sum()) for a in xs)
    return num / den if den > 0 else 0.0


def encode_state(state: Mapping[str, torch.Tensor], theta: float, codec: str) -> dict[str, bytes]:
    """Every floating tensor of ``state`` encoded by ``codec`` (``"upload"`` or ``"download"``).

    Parameters
    ----------
    state
        A state dict.
    theta
        The ratio.
    codec
        ``"upload"`` or ``"download"``.
    """
    enc = topk_encode if codec == "upload" else caesar_encode
    return {k: enc(v, theta) for k, v in state.items() if v.is_floating_point()}


def decode_state(payloads: Mapping[str, bytes], reference: Mapping[str, torch.Tensor], theta: float,
                 codec: str) -> dict[str, torch.Tensor]:
    """Inverse of :func:`encode_state`: shapes from ``reference`` (the download's stale local copy).

    Parameters
    ----------
    payloads
        What :func:`encode_state` produced.
    reference
        Shapes (and, for the download, the stale copy) of every tensor.
    theta
        The ratio.
    codec
        ``"upload"`` or ``"download"``.
    """
    out = {}
    for k, ref in reference.items():
        if k not in payloads:
            out[k] = ref.clone()
        elif codec == "upload":
            out[k] = topk_decode(payloads[k], ref.shape, theta)
        else:
            out[k] = caesar_decode(payloads[k], ref, theta)
    return out


__all__ = ["caesar_decode", "caesar_encode", "decode_state", "deviation", "encode_state", "topk_decode",
           "topk_encode"]
