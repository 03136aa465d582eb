"""Partition plans on a real (tiny) zoo model: split execution, gloo pipeline, payload codec, exporters."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError
from edgeplan.formulations.partition import PipelinePlan, SplitPlan
from edgeplan.io.export.split_spec import load_split_spec, pipelining_split_spec
from edgeplan.io.plans import export_plan, exporters_for
from edgeplan.registry import validators_for
from edgeplan.validation.partition import execute as vp
from edgeplan.validation.zoo import build_model

SPEC = {"name": "resnet18", "size": "tiny", "batch_size": 1, "seed": 0}


@pytest.fixture(scope="module")
def zoo():
    z = build_model("resnet18", size="tiny")
    prof = vp.profile_on_host(z.module, z.example_inputs, repeats=3, zoo=SPEC)
    return z, prof


def test_codec_round_trip() -> None:
    x = torch.randn(2, 3, 50)
    ids = torch.arange(7)
    back = vp.decode(vp.encode({"x": x, "ids": ids}, {}))
    assert torch.equal(back["x"], x) and torch.equal(back["ids"], ids)
    for bits, tol in ((1, 2.0), (2, 1.5), (4, 0.4), (8, 0.03), (12, 0.002)):
        q = vp.decode(vp.encode({"x": x, "ids": ids}, {"x": bits, "ids": bits}))
        assert float((q["x"] - x).abs().max()) <= tol * float(x.abs().max()), bits
        assert torch.equal(q["ids"], ids)                   # integer tensors are never quantized
    assert len(vp.encode({"x": x}, {"x": 4})) < len(vp.encode({"x": x}, {})) / 4


@pytest.mark.parametrize("link", ["delay", "socket"])
def test_split_execution_reports_measured_against_predicted(zoo, link: str) -> None:
    z, prof = zoo
    p = vp.host_split_problem(prof, n_tiers=3, rates_bps=[50e6, 200e6], latencies_s=[1e-3, 1e-3])
    L = prof.n_blocks
    plan = SplitPlan.from_cuts([2, L - 1], L)
    rep = vp.validate_split(p, plan, z.module, z.example_inputs, link=link, repeats=2)
    assert [s.stage for s in rep.stages] == ["tier0 (host)", f"link0 ({link})", "tier1 (host)", f"link1 ({link})",
                                             "tier2 (host)"]
    assert rep.output_max_abs_error == 0.0 and rep.measured_s > 0 and np.isfinite(rep.error)
    assert rep.predicted_s == pytest.approx(p.evaluate(plan).latency_s)
    link0 = rep.stages[1]
    assert link0.measured_s >= 0.9 * link0.predicted_s            # a paced link is never faster than its rate
    assert "predicted" in str(rep) and 0.0 <= rep.within_10pct <= 1.0


def test_plan_file_records_predicted_and_measured(zoo, tmp_path) -> None:
    from edgeplan.io.export.split_spec import save_plan_with_metrics
    from edgeplan.io.plans import load_plan

    z, prof = zoo
    p = vp.host_split_problem(prof, rates_bps=20e6)
    r = ep.solve(p, "split-enum")
    rep = vp.validate_split(p, r.plan, z.module, z.example_inputs, link="delay", repeats=1, warmup=0)
    path = save_plan_with_metrics(tmp_path / "plan.json", p, r, report=rep)
    doc = json.loads(path.read_text())
    assert doc["metrics"]["predicted"]["latency_s"] == pytest.approx(r.fun)
    assert doc["metrics"]["measured"]["measured_s"] == pytest.approx(rep.measured_s)
    assert doc["result"]["status"] == "optimal" and load_plan(path, p).plan == r.plan


def test_quantized_cut_deviates_a_little(zoo) -> None:
    z, prof = zoo
    p = vp.host_split_problem(prof, rates_bps=10e6, bit_widths=(8,), min_bits=8)
    plan = SplitPlan.from_cuts([3], prof.n_blocks, bits=[[0, 0, 8] + [0] * (prof.n_blocks - 3)])
    rep = vp.validate_split(p, plan, z.module, z.example_inputs, link="delay", repeats=1, warmup=0)
    assert 0.0 < rep.output_rel_error < 0.05
    planned = p.evaluate(plan).link_bytes[0]                    # a quarter of the native 512 B
    assert planned == pytest.approx(p.evaluate(SplitPlan.from_cuts([3], prof.n_blocks)).link_bytes[0] / 4)
    assert planned <= rep.details["payload_bytes"][0] <= planned + 64      # plus a header of a few dozen bytes


def test_validator_registry_rebuilds_the_zoo_model(zoo) -> None:
    _, prof = zoo
    p = vp.host_split_problem(prof)
    (label, run), = validators_for(p)
    rep = run(p, ep.solve(p, "split-enum").plan)
    assert "split" in label and rep.predicted_s > 0
    bare = vp.host_split_problem(prof.__class__(**{**{f: getattr(prof, f) for f in (
        "name", "block_names", "block_kinds", "fwd_flops", "bwd_flops", "num_params", "out_bytes", "edges",
        "edge_bytes")}, "measurements": prof.measurements}))
    with pytest.raises(ProblemDataError, match="carries no zoo spec"):
        run(bare, SplitPlan(np.zeros(prof.n_blocks, dtype=int)))
    with pytest.raises(ProblemDataError, match="`device` = 'cuda'"):
        run(p, SplitPlan(np.zeros(prof.n_blocks, dtype=int)), device="cuda")


def test_split_with_mismatched_profile_is_refused(zoo) -> None:
    z, _ = zoo
    other = vp.profile_on_host(z.module, z.example_inputs, granularity="leaf", repeats=1)
    p = vp.host_split_problem(other)
    with pytest.raises(Exception, match=r"splits into .* blocks"):
        vp.validate_split(p, SplitPlan(np.zeros(other.n_blocks, dtype=int)),
                          build_model("gpt2", size="tiny").module, build_model("gpt2", size="tiny").example_inputs)
    with pytest.raises(ProblemDataError, match="`link` = 'wifi'"):
        vp.validate_split(p, SplitPlan(np.zeros(other.n_blocks, dtype=int)), z.module, z.example_inputs, link="wifi")


@pytest.mark.parametrize("timing", ["concurrent", "dilated"])
def test_gloo_pipeline_runs_the_plan(zoo, timing: str) -> None:
    z, prof = zoo
    p = vp.host_pipeline_problem(prof, 2, rates_bps=100e6, n_micro=3, minimize="iteration")
    plan = ep.solve(p, "pipeline-dp").plan
    rep = vp.validate_pipeline(p, plan, SPEC, z.example_inputs, timeout_s=120, timing=timing)
    assert rep.kind.startswith(f"pipeline (2 processes, 3 micro-batches, {timing} timing; predicted from block times")
    met = p.evaluate(plan)
    assert rep.measured_s > 0 and rep.details["profile_predicted_s"] == pytest.approx(met.iteration_s)
    blocks = rep.details["block_s"]  # re-measured in the stage processes, one figure per block of the stage
    assert [len(blocks[s]) for s in range(2)] == np.diff(plan.boundaries).tolist()
    assert all(t > 0 for s in range(2) for t in blocks[s])
    F = np.array([sum(blocks[s]) for s in range(2)])
    assert rep.predicted_s == pytest.approx(p.times_objective(F, np.zeros(2), met.link_s, met.link_latency_s)[1])
    assert rep.stages[0].predicted_s == pytest.approx(F[0])
    starts, ends = rep.details["start_s"], rep.details["end_s"]
    assert len(ends[0]) == 3 and ends[1][-1] >= ends[0][-1]               # the last stage finishes last
    x = next(c.measured_s for c in rep.stages if c.stage == "link0")       # transfer seconds per micro-batch
    lat = float(p.latency_s[plan.devices[0], plan.devices[1]])
    free, arrive = 0.0, []
    for m in range(3):  # the FIFO link: a message leaves when produced and when the previous one has gone
        free = max(ends[0][m], free) + x
        arrive.append(free + lat)
    for m in range(3):  # a micro-batch starts once it has arrived and the stage is free (the flow shop)
        assert starts[1][m] >= arrive[m] - 1e-6 and (m == 0 or starts[1][m] >= ends[1][m - 1] - 1e-9)
    if timing == "dilated":  # the virtual clock: a stage waits only for its input or for itself
        assert starts[0][0] == 0.0
        assert starts[1] == pytest.approx([max(arrive[m], ends[1][m - 1] if m else 0.0) for m in range(3)], abs=1e-9)
    with pytest.raises(ProblemDataError, match="expected one micro-batch of 2"):
        vp.validate_pipeline(vp.host_pipeline_problem(prof, 2, micro_batch=2), plan, SPEC, z.example_inputs)
    with pytest.raises(ProblemDataError, match="`timing` = 'wall'"):
        vp.validate_pipeline(p, plan, SPEC, z.example_inputs, timing="wall")
    with pytest.raises(ProblemDataError, match="`calibrate` = -1"):
        vp.validate_pipeline(p, plan, SPEC, z.example_inputs, calibrate=-1)
    with pytest.raises(ProblemDataError, match="`iterations` = 0"):
        vp.validate_pipeline(p, plan, SPEC, z.example_inputs, iterations=0)
    spans = rep.details["iterations_s"]  # three timed iterations; the reported one has the median makespan
    assert len(spans) == 3 and rep.measured_s == sorted(spans)[1]
    if timing == "concurrent":  # no re-measuring: the profile's prediction
        plain = vp.validate_pipeline(p, plan, SPEC, z.example_inputs, timeout_s=120, timing=timing, calibrate=0,
                                     iterations=1)
        assert plain.predicted_s == pytest.approx(met.iteration_s) and plain.details["block_s"] == {0: [], 1: []}


def _listening(pids: set[int]) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) of the TCP sockets in LISTEN that ``pids`` hold."""
    import os
    import re

    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
                if m:
                    inodes.add(m.group(1))
        except OSError:
            continue
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if f[3] == "0A" and f[9] in inodes:                       # state LISTEN, one of theirs
                    out.add(f[1].split(":")[0])
    return out


@pytest.mark.skipif(not __import__("os").path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_gloo_pipeline_listens_on_loopback_only(zoo) -> None:
    """While the stages run, every listening socket they hold is on 127.0.0.1 or ::1 (the TCP rendezvous listened
    on all interfaces): the ranks meet through a file store, and gloo binds to the loopback interface."""
    import multiprocessing
    import threading

    z, prof = zoo
    p = vp.host_pipeline_problem(prof, 2, rates_bps=100e6, n_micro=3, minimize="iteration")
    plan = ep.solve(p, "pipeline-dp").plan
    seen: set[str] = set()
    polls = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            pids = {c.pid for c in multiprocessing.active_children()}
            if pids:
                seen.update(_listening(pids))
                polls[0] += 1
            done.wait(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        vp.validate_pipeline(p, plan, SPEC, z.example_inputs, timeout_s=120)
    finally:
        done.set()
        t.join()
    loopback = {"0100007F", "00000000000000000000000001000000"}            # 127.0.0.1, ::1
    assert polls[0] > 0 and seen, "no listening socket of a stage was seen while the pipeline ran"
    assert seen <= loopback, seen


# -- exporters ---------------------------------------------------------------------------------------------------
def test_split_spec_loads_into_torch_pipelining(zoo, tmp_path) -> None:
    from torch.distributed.pipelining import pipeline

    z, prof = zoo
    p = vp.host_pipeline_problem(prof, 3, rates_bps=1e9)
    plan = PipelinePlan([0, 2, 4, prof.n_blocks], [0, 1, 2])
    assert {"split-spec", "onnx", "pipeedge"} <= set(exporters_for(plan))
    (path,) = export_plan(p, plan, "split-spec", tmp_path)
    spec = load_split_spec(path)
    assert spec["pipelining"]["exact"] and len(spec["stages"]) == 3
    pipe = pipeline(z.module, mb_args=z.example_inputs, split_spec=pipelining_split_spec(spec))
    assert pipe.num_stages == 3
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(PlanError, match="key `format` = 'other'"):
        load_split_spec(tmp_path / "bad.json")


def test_split_spec_of_a_split_plan_lists_widths(zoo, tmp_path) -> None:
    _, prof = zoo
    p = vp.host_split_problem(prof, bit_widths=(4, 8), min_bits=4)
    plan = SplitPlan.from_cuts([2], prof.n_blocks, bits=[[0, 4] + [0] * (prof.n_blocks - 2)])
    spec = load_split_spec(export_plan(p, plan, "split-spec", tmp_path)[0])
    (t,) = spec["links"][0]["tensors"]
    assert t["block"] == 1 and t["bits"] == 4 and spec["pipelining"]["n_stages"] == 2


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed")
def test_onnx_stages_reproduce_the_model(zoo, tmp_path) -> None:
    import onnx
    from onnx.reference import ReferenceEvaluator

    z, prof = zoo
    p = vp.host_split_problem(prof)
    plan = SplitPlan.from_cuts([3], prof.n_blocks)
    files = export_plan(p, plan, "onnx", tmp_path)
    manifest = json.loads(files[-1].read_text())
    env = {"pixel_values": z.example_inputs[0].numpy()}
    for stage in manifest["stages"]:
        model = onnx.load(tmp_path / stage["file"])
        outs = ReferenceEvaluator(model).run(None, {n: env[n] for n in stage["inputs"]})
        env.update(zip(stage["outputs"], outs, strict=True))
    logits = env[manifest["model_outputs"][0]]
    ref = z.module(*z.example_inputs).logits.detach().numpy()
    assert np.allclose(logits, ref, atol=1e-4)


def test_pipeedge_exporter_writes_a_schedule(zoo, tmp_path) -> None:
    import yaml

    _, prof = zoo
    p = vp.host_pipeline_problem(prof, 2, rates_bps=1e9, order="free")
    plan = PipelinePlan([0, 3, prof.n_blocks], [1, 0])
    files = export_plan(p, plan, "pipeedge", tmp_path)
    assert [f.name for f in files] == ["models.yml", "device_types.yml", "devices.yml", "schedule.yml"]
    sched = yaml.safe_load(files[-1].read_text())
    assert sched == [{"host-1": [1, 3]}, {"host-0": [4, prof.n_blocks]}]
