"""The zoo profiles shipped in ``edgeplan/profiles/data/zoo`` equal a fresh trace of the zoo models."""

from __future__ import annotations

import numpy as np
import pytest

from edgeplan.profiles import list_presets, load_profile
from edgeplan.validation.zoo import SHIPPED_SIZES, ZOO_MODELS, shipped_profile_name, zoo_profile

ALL = [(n, s) for n in ZOO_MODELS for s in SHIPPED_SIZES]
FAST = [("resnet18", "small"), ("gpt2", "small")]


def _same(name: str, size: str) -> None:
    shipped = load_profile(shipped_profile_name(name, size))
    fresh = zoo_profile(name, size)
    assert shipped.name == fresh.name and shipped.block_names == fresh.block_names
    for field in ("fwd_flops", "bwd_flops", "out_bytes", "num_params", "mem_bytes"):
        np.testing.assert_allclose(getattr(shipped, field), getattr(fresh, field), rtol=1e-12, err_msg=field)
    assert dict(shipped.meta["zoo"]) == {"name": name, "size": size, "batch_size": 1, "seed": 0}


def test_every_zoo_model_ships_at_every_size() -> None:
    assert sorted(list_presets("model")) == sorted(shipped_profile_name(n, s) for n, s in ALL)


@pytest.mark.parametrize(("name", "size"), FAST)
def test_shipped_profile_equals_a_fresh_trace(name: str, size: str) -> None:
    _same(name, size)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), [c for c in ALL if c not in FAST])
def test_every_shipped_profile_equals_a_fresh_trace(name: str, size: str) -> None:
    _same(name, size)
