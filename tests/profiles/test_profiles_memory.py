"""Host memory helpers: the steady allocator and calls in a fresh interpreter."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgeplan.errors import ProblemDataError
from edgeplan.profiles.memory import MemoryProbe, in_fresh_process, steady_allocator


def _touch() -> float:
    with MemoryProbe() as probe:
        a = np.ones(2_500_000)  # 20 MB: below the steady mmap threshold, above the default one
        a[::512] = 2.0
        del a
    return probe.peak_mb


def _pid_and_reuse(x: int) -> tuple[int, int, float]:
    _touch()
    return os.getpid(), x * 2, _touch()


def _raise(field: str) -> None:
    raise ProblemDataError(f"`{field}` = -1; expected >= 0")


def _unpicklable() -> object:
    return lambda: None


def _scoped() -> tuple[bool, float, float, float]:
    with steady_allocator() as applied:
        first, again = _touch(), _touch()  # the second reuses what the first freed: no new pages
    return applied, first, again, _touch()


def test_timing_leaves_the_allocator_as_it_found_it() -> None:
    # in a fresh interpreter: a heap that earlier tests left with free blocks would serve the 20 MB from them
    applied, first, again, after = in_fresh_process(_scoped, steady=False)
    assert first > 15 and after > 15
    if applied:
        assert again < 5
    assert applied == sys.platform.startswith("linux")


def test_a_fresh_process_returns_the_result_and_keeps_its_steady_allocator() -> None:
    pid, doubled, again = in_fresh_process(_pid_and_reuse, 21)
    assert pid != os.getpid() and doubled == 42
    if sys.platform.startswith("linux"):
        assert again < 5  # the child ran inside the steady allocator: the second 20 MB reused the first
        _, _, default = in_fresh_process(_pid_and_reuse, 1, steady=False)
        assert default > 15


def test_a_fresh_process_hands_back_its_exception() -> None:
    with pytest.raises(ProblemDataError, match="`rate` = -1"):
        in_fresh_process(_raise, "rate")
    with pytest.raises(RuntimeError, match="_unpicklable"):
        in_fresh_process(_unpicklable)
