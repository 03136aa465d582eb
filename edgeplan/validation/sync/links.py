"""Paced loopback links: length-prefixed messages (JSON, or numpy arrays as ``npz``; never pickle) over a TCP
socket on 127.0.0.1, sent no faster than a given byte rate (a token bucket in the sender), so that transfer
times are those of the planned WAN link.

Nothing listens beyond loopback: :func:`listener` binds ``127.0.0.1`` on an ephemeral port.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import time
from typing import Any

#: Bytes per paced write (the bucket's granularity).
CHUNK = 16384
_HEADER = struct.Struct("!cQ")


def _encode(obj: Any) -> tuple[bytes, bytes]:
    """A dict of numpy arrays as ``npz`` (kind ``A``), anything else as JSON (kind ``J``): no pickle, so a
    message can carry data only, never code."""
    import numpy as np

    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        buf = io.BytesIO()
        np.savez(buf, **obj)
        return b"A", buf.getvalue()
    return b"J", json.dumps(obj).encode()


def _decode(kind: bytes, data: bytes) -> Any:
    import numpy as np

    if kind == b"A":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    return json.loads(data)


def listener() -> tuple[socket.socket, int]:
    """A listening socket on loopback and its port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def connect(port: int) -> socket.socket:
    """A client socket to ``127.0.0.1:port`` (no Nagle delay)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send(sock: socket.socket, obj: Any, rate_bps: float | None = None) -> int:
    """Encode ``obj`` (:func:`_encode`) and send it, at most ``rate_bps`` bytes per second (``None``: unpaced).
    Returns the bytes sent.

    Each chunk is released when the link would have serialised its last byte (``start + end / rate``), so the
    receiver holds the whole message ``len / rate`` seconds after the first byte was due, as on a real link."""
    kind, data = _encode(obj)
    payload = _HEADER.pack(kind, len(data)) + data
    if rate_bps is None:
        sock.sendall(payload)
        return len(payload)
    start = time.perf_counter()
    for off in range(0, len(payload), CHUNK):
        end = min(off + CHUNK, len(payload))
        wait = start + end / rate_bps - time.perf_counter()  # a chunk arrives once its last byte is serialised
        if wait > 0:
            time.sleep(wait)
        sock.sendall(payload[off:end])
    return len(payload)


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(min(n - len(buf), 1 << 20))
        if not part:
            raise ConnectionError("the peer closed the link")
        buf += part
    return bytes(buf)


def recv(sock: socket.socket) -> Any:
    """One message from ``sock``."""
    kind, n = _HEADER.unpack(_exactly(sock, _HEADER.size))
    if kind not in (b"A", b"J"):
        raise ConnectionError(f"a message of unknown kind {kind!r} arrived; expected b'A' or b'J'")
    return _decode(kind, _exactly(sock, n))


__all__ = ["CHUNK", "connect", "listener", "recv", "send"]
