"""Loopback plumbing shared by the executors: exact reads, paced sends and stdlib-only helper processes.

:func:`recv_exact` and :func:`send_paced` use the standard library only and import it themselves, so
:func:`spawn` can ship their source, with a ``main`` that calls them by these names, to a fresh interpreter
(``python -c``) that starts in milliseconds because it never imports torch, and needs no
``if __name__ == "__main__"`` guard in users' scripts.
"""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any


def recv_exact(sock: Any, n: int) -> bytes:
    """Read exactly ``n`` bytes from ``sock`` (``ConnectionError`` if it closes first)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if not k:
            raise ConnectionError(f"the loopback connection closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def send_paced(sock: Any, data: bytes, rate_bps: float) -> None:
    """Send ``data`` at ``rate_bps``: chunks of about 1 ms (1 to 64 KiB), each released no earlier than the time
    its last byte is due."""
    import time

    byte_rate = rate_bps / 8.0
    chunk = int(min(65536, max(1024, byte_rate * 1e-3)))
    start = time.perf_counter()
    sent = 0
    view = memoryview(data)
    while sent < len(data):
        end = min(sent + chunk, len(data))
        wait = start + end / byte_rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sock.sendall(view[sent:end])
        sent = end


def spawn(helpers: Sequence[Callable[..., Any]], main: Callable[[], None], args: Any) -> subprocess.Popen:
    """Start ``python -c`` with the source of ``helpers`` and ``main``, run ``main()``, and give it ``args``
    pickled on its stdin (closed afterwards); its stdout is a pipe."""
    code = "\n\n".join(inspect.getsource(f) for f in (*helpers, main))
    proc = subprocess.Popen([sys.executable, "-c", f"from typing import Any\n{code}\n{main.__name__}()\n"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdin.write(pickle.dumps(args))
        proc.stdin.close()
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Wait for ``proc`` (5 s), then terminate it, then kill it; close its stdout."""
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5.0)
    if proc.stdout is not None:
        proc.stdout.close()


__all__ = ["recv_exact", "send_paced", "spawn", "stop"]
