"""Host memory: the peak resident memory of a block of code, and an allocator that keeps freed memory.

:class:`MemoryProbe` measures a block's resident-memory high-water mark above its start: on Linux the process's
mark is reset (``/proc/self/clear_refs``) on entry and read (``VmHWM``) on exit; elsewhere it falls back to
``tracemalloc`` (Python-side allocations only).

:func:`steady_allocator` keeps glibc from handing large freed blocks back to the kernel while repeated steps are
timed: otherwise every step page-faults its activations back in, which on a small model costs 10-15 % of a
step, unevenly between configurations. It only helps in a fresh heap: in a process that has already built and
freed models, steps inside it ran 1.5-2x slower than in a new one (GPT-2 small, this host), so
:func:`in_fresh_process` runs a function in a new interpreter, inside the steady allocator or not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any


def _proc_status_kb(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name):
                return int(line.split()[1])
    raise OSError(field_name)


class MemoryProbe:
    """Peak resident memory of a block above its start, in MiB (see the module docstring).

    Attributes
    ----------
    peak_mb
        After the block: its high-water mark above the resident memory at its start (``None`` inside, and
        when neither source is available).
    mode
        ``"rss"`` (the kernel's mark), ``"tracemalloc"`` (Python allocations only) or ``"none"``.
    start_kb
        Resident memory at the start, KiB (``"rss"`` mode).
    """

    def __enter__(self) -> MemoryProbe:
        self.peak_mb: float | None = None
        self.mode = "rss"
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
            self.start_kb = _proc_status_kb("VmRSS")
        except OSError:
            self.mode = "tracemalloc" if not tracemalloc.is_tracing() else "none"
            if self.mode == "tracemalloc":
                tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mode == "rss":
            self.peak_mb = max(0, _proc_status_kb("VmHWM") - self.start_kb) / 1024
        elif self.mode == "tracemalloc":
            self.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


#: ``mallopt`` parameters (malloc.h) and their glibc defaults.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_DEFAULTS = ((_M_MMAP_THRESHOLD, 128 << 10), (_M_TRIM_THRESHOLD, 128 << 10), (_M_TOP_PAD, 128 << 10))


@contextlib.contextmanager
def steady_allocator() -> Iterator[bool]:
    """Inside, glibc keeps freed memory in the process (``mallopt``: mmap threshold 32 MiB, no trimming, 512 MiB
    top pad), so repeated training steps reuse their memory instead of page-faulting it back; yields whether it
    applied (Linux with glibc only; elsewhere nothing changes). On exit the documented defaults (128 KiB each)
    come back and the cached memory is returned to the system (``malloc_trim``); glibc's dynamic mmap threshold
    stays off for the rest of the process."""
    libc = _libc()
    steady = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 512 << 20))
    ok = libc is not None and all(libc.mallopt(k, v) == 1 for k, v in steady)
    try:
        yield ok
    finally:
        if libc is not None:
            for k, v in _DEFAULTS:
                libc.mallopt(k, v)
            libc.malloc_trim(0)


def in_fresh_process(fn: Callable[..., Any], *args: Any, steady: bool = True, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` called in a new Python interpreter (inside :func:`steady_allocator` when
    ``steady``), its result or exception handed back by pickle.

    When ``steady``, the child also asks PyTorch for transparent huge pages on its large CPU tensors
    (``THP_MEM_ALLOC_ENABLE=1``, unless the caller's environment sets it): with several GPT-2 small models alive
    in one process, steps otherwise ran 1.5-1.8x slower than with one (this host), and with it within the
    host's noise (about +-20 %).

    The child is started with ``subprocess`` (``python -c``), not ``multiprocessing``: it does not re-import the
    caller's main module, so scripts need no ``if __name__ == "__main__":`` guard. ``fn`` must be a module-level
    function of an importable module, and arguments and result picklable. Ctrl-C reaches the child (same process
    group) and is raised here as ``KeyboardInterrupt``.

    Parameters
    ----------
    fn
        The function.
    args, kwargs
        Its arguments.
    steady
        Run it inside :func:`steady_allocator`, with huge pages for torch's large tensors.
    """
    with tempfile.TemporaryDirectory(prefix="edgeplan-") as tmp:
        job, out = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "out.pkl")
        with open(job, "wb") as fh:
            pickle.dump((fn.__module__, fn.__qualname__, args, kwargs, steady, out), fh)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        if steady:
            env.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # torch: 2 MiB-aligned large blocks, madvise(HUGEPAGE)
        code = f"from {__name__} import _child_main; _child_main({job!r})"
        rc = subprocess.run([sys.executable, "-c", code], env=env).returncode
        if not os.path.exists(out):
            raise RuntimeError(f"the child process for {fn.__qualname__} exited with status {rc} and no result")
        with open(out, "rb") as fh:
            ok, value = pickle.load(fh)
    if not ok:
        raise value
    return value


def _child_main(job: str) -> None:
    with open(job, "rb") as fh:
        module, qualname, args, kwargs, steady, out = pickle.load(fh)
    fn: Any = importlib.import_module(module)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    try:
        with steady_allocator() if steady else contextlib.nullcontext():
            result = (True, fn(*args, **kwargs))
    except Exception as exc:  # handed back to the caller
        result = (False, exc)
    try:
        data = pickle.dumps(result)
    except Exception as exc:  # an unpicklable result or exception
        data = pickle.dumps((False, RuntimeError(f"{qualname}: {type(exc).__name__}: {exc}")))
    with open(out, "wb") as fh:
        fh.write(data)


__all__ = ["MemoryProbe", "in_fresh_process", "steady_allocator"]
