"""A layer's weights at a planned precision as bytes, and back (the payload SLIDE's server streams).

Format: a 4-byte big-endian header length, a JSON header ``[[name, dtype, shape, scale, size], ...]``, then
the raw tensor bytes. ``fp16`` casts floating tensors to half precision; ``int8`` quantises each tensor
symmetrically (``scale = max|t| / 127``) and the receiver dequantises to float32.
"""

from __future__ import annotations

import json
import struct
from typing import Any

#: Precision name -> bits per floating-point weight.
PRECISIONS = {"fp32": 32, "fp16": 16, "int8": 8}


def pack_layer(block: Any, precision: str) -> bytes:
    """The block's ``state_dict`` at ``precision`` as bytes: a JSON header (name, dtype, shape, scale, size) + data."""
    import torch

    bits = PRECISIONS[precision]
    entries, chunks = [], []
    for name, t in block.state_dict().items():
        t = t.detach().cpu().contiguous()
        scale = None
        if t.is_floating_point() and bits == 16:
            t = t.to(torch.float16)
        elif t.is_floating_point() and bits == 8:
            amax = float(t.abs().max()) if t.numel() else 0.0
            scale = amax / 127.0 if amax > 0 else 1.0
            t = torch.clamp(torch.round(t / scale), -127, 127).to(torch.int8)
        elif t.is_floating_point():
            t = t.to(torch.float32)
        raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        entries.append([name, str(t.dtype).removeprefix("torch."), list(t.shape), scale, len(raw)])
        chunks.append(raw)
    header = json.dumps(entries).encode()
    return struct.pack("!I", len(header)) + header + b"".join(chunks)


def unpack_layer(buf: bytes) -> dict[str, Any]:
    """The tensors of :func:`pack_layer`'s bytes (int8 dequantised to float32, fp16 promoted to float32)."""
    import torch

    (n,) = struct.unpack_from("!I", buf, 0)
    entries = json.loads(buf[4: 4 + n].decode())
    out, offset = {}, 4 + n
    for name, dtype, shape, scale, size in entries:
        t = torch.frombuffer(bytearray(buf[offset: offset + size]), dtype=getattr(torch, dtype)) if size else \
            torch.empty(0, dtype=getattr(torch, dtype))
        t = t.reshape(shape)
        if scale is not None:
            t = t.to(torch.float32) * scale
        elif t.is_floating_point():
            t = t.to(torch.float32)
        out[name] = t
        offset += size
    return out


__all__ = ["PRECISIONS", "pack_layer", "unpack_layer"]
