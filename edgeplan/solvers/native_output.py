"""What native solver libraries print, captured: into ``Result.stats["log"]`` and the ``edgeplan`` logger.

HiGHS, SCIP, CP-SAT and the Pyomo/scipy wrappers print from C/C++ straight to the process's file descriptors 1
and 2, past Python: with ``verbose=False`` they are quiet, but some builds still print debug lines (HiGHS 1.11:
``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``), which broke into progress bars.
While a method that uses a native library runs, :class:`NativeOutput` points both descriptors at a pipe that a
reader thread drains; afterwards the text is the result's ``stats["log"]`` (its last :data:`MAX_LOG_CHARS`
characters) and each line is logged to ``edgeplan.solvers.<method>`` at DEBUG level. With ``verbose=True`` the
solver's own log is switched on and echoed live to the standard error the solve started with instead.

The capture is per process: a solve inside a solve (``fl-bisect`` calling ``highs``) shares the outer capture,
and solves in several threads at once (Dask's threaded workers) share the first one's.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
from typing import Any

#: The most characters of a solve's native output kept in ``stats["log"]`` (the end is kept).
MAX_LOG_CHARS = 1_000_000

_lock = threading.Lock()
_active = 0


@functools.cache
def _libc() -> Any:
    """The C library of this process (``None`` where it cannot be opened)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (a pipe makes printf fully buffered: its lines would leak after the capture)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc().fflush(None)


def _flush_python() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


class NativeOutput:
    """Capture file descriptors 1 and 2 while the block runs (see the module docstring).

    Parameters
    ----------
    logger_name
        Where the captured lines are logged (DEBUG) after the block.
    echo
        Also copy the output live to the standard error the block started with.
    """

    def __init__(self, logger_name: str = "edgeplan.solvers", *, echo: bool = False) -> None:
        self.logger = logging.getLogger(logger_name)
        self.echo = echo
        self.text = ""
        self._owner = False

    def __enter__(self) -> NativeOutput:
        global _active
        with _lock:
            self._owner = _active == 0
            _active += 1
        if not self._owner:
            return self
        try:
            _flush_python()
            _flush_c_stdio()
            self._saved = (os.dup(1), os.dup(2))
            read_fd, write_fd = os.pipe()
        except OSError:  # no descriptors to capture (an embedded interpreter): run uncaptured
            self._owner = False
            return self
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, args=(read_fd,), name="edgeplan-native-output",
                                        daemon=True)
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._reader.start()
        return self

    def _drain(self, read_fd: int) -> None:
        try:
            while chunk := os.read(read_fd, 65536):
                self._chunks.append(chunk)
                if self.echo:
                    with contextlib.suppress(OSError):
                        os.write(self._saved[1], chunk)
        finally:
            os.close(read_fd)

    def __exit__(self, *exc: object) -> None:
        global _active
        try:
            if self._owner:
                _flush_python()
                _flush_c_stdio()
                out, err = self._saved
                os.dup2(out, 1)
                os.dup2(err, 2)  # the pipe's last write ends are gone: the reader sees the end of it
                self._reader.join(timeout=5.0)
                os.close(out)
                os.close(err)
                self.text = b"".join(self._chunks).decode(errors="replace")[-MAX_LOG_CHARS:]
                for line in self.text.splitlines() if not self.echo else ():  # echoed lines were shown live
                    if line.strip():
                        self.logger.debug(line)
        finally:
            with _lock:
                _active -= 1


def capture_for(method: Any, verbose: bool) -> contextlib.AbstractContextManager[Any]:
    """A :class:`NativeOutput` for a method that uses a native library (it ``requires`` one), else a no-op."""
    if not getattr(method, "requires", ()):
        return contextlib.nullcontext(None)
    return NativeOutput(f"edgeplan.solvers.{method.name}", echo=verbose)


__all__ = ["MAX_LOG_CHARS", "NativeOutput", "capture_for"]
