"""ModelProfile: validation, cuts, articulation points, coarsening, measurements and the JSON round trip."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from edgeplan.errors import ProfileError
from edgeplan.profiles import Measurement, ModelProfile, load_profile


def residual() -> ModelProfile:
    """stem -> a -> b -> add -> head, with a skip stem -> add (a ResNet basic block)."""
    return ModelProfile(
        name="res", block_names=("stem", "a", "b", "add", "head"),
        block_kinds=("conv", "conv", "conv", "elementwise", "linear"),
        fwd_flops=[10.0, 20.0, 30.0, 0.0, 5.0], bwd_flops=[10.0, 40.0, 60.0, 0.0, 10.0],
        num_params=[100, 200, 300, 0, 50], out_bytes=[64.0, 32.0, 64.0, 64.0, 4.0],
        edges=[[0, 1], [0, 3], [1, 2], [2, 3], [3, 4]], edge_bytes=[64.0, 64.0, 32.0, 64.0, 64.0],
        input_bytes=12.0, input_consumers=[0],
        measurements=(Measurement("cpu", 1, "fp32", [1.0, 2.0, 3.0, 0.5, 0.25], 6.0, repeats=3),))


def test_chain_constructor_and_prefix_cuts() -> None:
    p = ModelProfile.chain("c", [1.0, 2.0, 3.0], [10.0, 20.0, 30.0], input_bytes=5.0, num_params=[1, 2, 3])
    assert p.is_chain and p.n_blocks == 3 and len(p) == 3
    np.testing.assert_array_equal(p.cut_bytes_after(), [5.0, 10.0, 20.0, 0.0])
    np.testing.assert_array_equal(p.articulation_points(), [0, 1])
    np.testing.assert_array_equal(p.bwd_flops, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(ModelProfile.prefix(p.fwd_flops), [0.0, 1.0, 3.0, 6.0])
    np.testing.assert_array_equal(p.param_bytes("fp16"), [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(p.activation_bytes("int8"), [2.5, 5.0, 7.5])
    assert p.to_chain() == p


def test_residual_block_articulation_points_and_segments() -> None:
    p = residual()
    assert not p.is_chain
    np.testing.assert_array_equal(p.last_consumer(), [3, 2, 3, 4, 4])
    np.testing.assert_array_equal(p.articulation_points(), [0, 3])
    assert p.segments() == [(0, 1), (1, 4), (4, 5)]
    # cut after stem: its one tensor; after a: stem's skip + a's output; after add: add's output
    np.testing.assert_array_equal(p.cut_bytes_after(), [12.0, 64.0, 96.0, 128.0, 64.0, 0.0])
    c = p.to_chain()
    assert c.is_chain and c.block_names == ("stem", "a..add", "head")
    np.testing.assert_array_equal(c.fwd_flops, [10.0, 50.0, 5.0])
    np.testing.assert_array_equal(c.num_params, [100, 500, 50])
    np.testing.assert_array_equal(c.edge_bytes, [64.0, 64.0])      # the skip and the main path: one tensor
    np.testing.assert_array_equal(c.out_bytes, [64.0, 64.0, 4.0])
    np.testing.assert_array_equal(c.latency("cpu", 1).block_time_s, [1.0, 5.5, 0.25])
    assert c.kind_flops["conv"].sum() == 60.0


def random_dag(rng: np.random.Generator, n: int, *, shared_tensor: bool) -> ModelProfile:
    edges = [(u, w) for u, w in itertools.combinations(range(n), 2) if w == u + 1 or rng.random() < 0.3]
    e_bytes = rng.integers(1, 50, size=len(edges)).astype(float)
    out = np.zeros(n)
    for (u, _w), b in zip(edges, e_bytes, strict=True):
        out[u] = max(out[u], b) if shared_tensor else out[u] + b
    if shared_tensor:     # every edge of a block carries its single output tensor
        e_bytes = np.array([out[u] for u, _ in edges])
    out[-1] = 7.0
    consumers = sorted({0, *rng.choice(n, size=2).tolist()})
    return ModelProfile(name="dag", block_names=tuple(f"b{i}" for i in range(n)), block_kinds=("other",) * n,
                        fwd_flops=rng.random(n), bwd_flops=rng.random(n), num_params=rng.integers(0, 9, n),
                        out_bytes=out, edges=edges, edge_bytes=e_bytes, input_bytes=3.0, input_consumers=consumers)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_cut_bytes_and_closure_match_brute_force(seed: int, shared: bool) -> None:
    rng = np.random.default_rng(seed)
    p = random_dag(rng, 7, shared_tensor=shared)
    masks = np.array(list(itertools.product([False, True], repeat=7)))
    got = p.cut_bytes(masks)
    closed = p.is_ancestor_closed(masks)
    for m, g, c in zip(masks, got, closed, strict=True):
        leaving = [(u, w, b) for (u, w), b in zip(p.edges.tolist(), p.edge_bytes, strict=True) if m[u] and not m[w]]
        if shared:
            expect = sum(p.out_bytes[u] for u in {u for u, _, _ in leaving})
        else:
            expect = sum(b for _, _, b in leaving)
        if any(not m[i] for i in p.input_consumers):
            expect += p.input_bytes
        assert g == pytest.approx(expect)
        assert c == all(m[u] or not m[w] for u, w in p.edges.tolist())
    # articulation points: prefix cuts crossed by exactly the block's own output
    for k in p.articulation_points():
        srcs = {u for u, w in p.edges.tolist() if u <= k < w}
        assert srcs == {k} and max(p.input_consumers) <= k


def test_coarsen_preserves_totals() -> None:
    p = random_dag(np.random.default_rng(9), 8, shared_tensor=True)
    c = p.coarsen([0, 3, 5, 8])
    assert c.n_blocks == 3
    for f in ("fwd_flops", "bwd_flops", "num_params", "mem_bytes", "num_ops"):
        assert getattr(c, f).sum() == pytest.approx(getattr(p, f).sum())
    assert (c.edges[:, 0] < c.edges[:, 1]).all()
    masks = np.zeros((2, 8), dtype=bool)
    masks[0, :3] = True
    masks[1, :5] = True
    np.testing.assert_allclose(c.cut_bytes_after()[1:3], p.cut_bytes(masks))
    with pytest.raises(ProfileError, match=r"`boundaries` = \[0, 4, 4, 8\]; expected strictly increasing from 0 to 8"):
        p.coarsen([0, 4, 4, 8])


def test_json_round_trip_and_load_profile(tmp_path: Path) -> None:
    p = residual()
    path = p.save(tmp_path / "res.json")
    back = load_profile(path)
    assert isinstance(back, ModelProfile) and back == p
    assert back.measurements[0].additivity_error == pytest.approx(6.75 / 6.0 - 1)
    d = json.loads(path.read_text())
    assert d["format"] == "edgeplan.model_profile" and d["blocks"][1]["name"] == "a"


def test_measurements_lookup_and_replace() -> None:
    p = residual()
    assert p.latency("cpu", 1, "fp32").repeats == 3
    with pytest.raises(ProfileError, match=r"`res` has no measurement for \('cuda', 1, 'fp32'\); expected one of"):
        p.latency("cuda", 1)
    m2 = Measurement("cpu", 1, "fp32", [1.0] * 5, 5.0)
    q = p.with_measurement(m2).with_measurement(Measurement("cpu", 8, "fp32", [2.0] * 5, 10.0))
    assert len(q.measurements) == 2 and q.latency("cpu", 1).whole_time_s == 5.0
    with pytest.raises(ProfileError, match=r"`measurements` entry \('cpu', 1, 'fp32'\) has 2 block times; expected 5"):
        ModelProfile(**{**_fields(p), "measurements": (Measurement("cpu", 1, "fp32", [1.0, 1.0], 1.0),)})
    with pytest.raises(ProfileError, match=r"`batch_size` = 0; expected a positive integer"):
        Measurement("cpu", 0, "fp32", [1.0], 1.0)


def _fields(p: ModelProfile) -> dict:
    return {f: getattr(p, f) for f in p.__dataclass_fields__}


@pytest.mark.parametrize(("change", "message"), [
    ({"block_names": ("stem", "a", "a", "add", "head")}, r"`block_names` has the duplicate 'a'; expected unique"),
    ({"block_kinds": ("conv",) * 4 + ("mlp",)}, r"`block_kinds` = 'mlp'; expected one of 'conv'"),
    ({"edges": [[0, 1], [0, 3], [2, 1], [2, 3], [3, 4]]}, r"`edges` has \(2, 1\); expected u < w \(blocks listed in a"),
    ({"edges": [[0, 1], [0, 3], [1, 2], [2, 3], [3, 9]]}, r"`edges` has an index outside \[0, 4\]"),
    ({"edges": [[0, 1], [0, 1], [1, 2], [2, 3], [3, 4]]}, r"`edges` has a repeated edge"),
    ({"edge_bytes": [1.0, 2.0]}, r"`edge_bytes` has shape \(2,\); expected shape \(5\)"),
    ({"fwd_flops": [1.0, -1.0, 0.0, 0.0, 0.0]}, r"`fwd_flops`\[1\] = -1.0; expected values >= 0"),
    ({"kind_flops": {"conv": [1.0] * 5}}, r"`kind_flops` sums to 1.0 at block 2; expected fwd_flops = 30.0"),
    ({"input_consumers": [7]}, r"`input_consumers`\[0\] = 7; expected values <= 4"),
    ({"param_dtype": "fp12"}, r"`param_dtype` = 'fp12'; expected one of"),
])
def test_validation_messages(change: dict, message: str) -> None:
    p = residual()
    with pytest.raises(ProfileError, match=message):
        ModelProfile(**{**_fields(p), "kind_flops": None, **change})


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match=r"profile file `.*bad.json` is not valid JSON"):
        load_profile(bad)
    d = residual().to_dict()
    del d["blocks"][2]["fwd_flops"]
    bad.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match=r"bad.json`: key `fwd_flops` is missing; expected it in the"):
        load_profile(bad)
    d = residual().to_dict()
    d["format"] = "onnx"
    bad.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match=r"bad.json`: key `format` = 'onnx'; expected 'edgeplan.model_profile'"):
        load_profile(bad)
    d = residual().to_dict()
    d["edges"][0] = [1, 0, 5.0]
    bad.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match=r"bad.json`: `edges` has \(1, 0\); expected u < w"):
        load_profile(bad)


def test_networkx_and_summary() -> None:
    g = residual().to_networkx()
    assert g.number_of_nodes() == 5 and g.number_of_edges() == 5 and g.edges[0, 3]["bytes"] == 64.0
    text = residual().summary()
    assert "res: 5 blocks" in text and "stem" in text
