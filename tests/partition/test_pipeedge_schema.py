"""The ``pipeedge`` export against PipeEdge's documented scheduler schema.

PipeEdge v0.1.1 (usc-isi/PipeEdge, ``README_Scheduler.md``; the types its ``sched-pipeline`` parses in
``src-native/yaml_types.h``): ``models.yml`` maps a model to ``layers`` (int), ``parameters_in`` (int),
``parameters_out`` (one non-negative int per layer) and ``mem_MB`` (one number per layer); ``device_types.yml``
maps a type to ``mem_MB`` and ``bw_Mbps`` (numbers) and optional ``model_profiles`` (model -> list of
``{dtype: str, batch_size: int, time_s: [one number per layer]}``); ``devices.yml`` maps a type to its hosts; a
schedule is a list of one-entry maps ``host: [first, last]`` (1-based, inclusive, in stage order).
"""

from __future__ import annotations

from pathlib import Path

import yaml

import edgeplan as ep
from edgeplan.formulations.partition.instances import pipeline_instance
from edgeplan.formulations.partition.pipeedge import read_pipeedge


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_schema(folder: Path) -> None:
    models = yaml.safe_load((folder / "models.yml").read_text())
    types = yaml.safe_load((folder / "device_types.yml").read_text())
    devices = yaml.safe_load((folder / "devices.yml").read_text())
    schedule = yaml.safe_load((folder / "schedule.yml").read_text())
    for name, m in models.items():
        assert isinstance(name, str) and set(m) == {"layers", "parameters_in", "parameters_out", "mem_MB"}
        assert _is_int(m["layers"]) and _is_int(m["parameters_in"]) and m["parameters_in"] >= 0
        assert len(m["parameters_out"]) == len(m["mem_MB"]) == m["layers"]
        assert all(_is_int(v) and v >= 0 for v in m["parameters_out"]) and all(map(_is_num, m["mem_MB"]))
    for t in types.values():
        assert set(t) <= {"mem_MB", "bw_Mbps", "model_profiles"} and _is_num(t["mem_MB"]) and _is_num(t["bw_Mbps"])
        for model, profiles in t.get("model_profiles", {}).items():
            assert model in models and isinstance(profiles, list) and profiles
            for prof in profiles:
                assert set(prof) == {"dtype", "batch_size", "time_s"} and isinstance(prof["dtype"], str)
                assert _is_int(prof["batch_size"]) and len(prof["time_s"]) == models[model]["layers"]
                assert all(map(_is_num, prof["time_s"]))
    hosts = {h for t, hs in devices.items() for h in hs}
    assert set(devices) <= set(types) and all(isinstance(h, str) for h in hosts)
    layers = next(iter(models.values()))["layers"]
    nxt = 1
    for entry in schedule:
        ((host, (first, last)),) = entry.items()
        assert host in hosts and first == nxt and first <= last
        nxt = last + 1
    assert nxt == layers + 1


def test_pipeedge_export_follows_pipeedge_schema_and_reads_back(tmp_path: Path) -> None:
    p = pipeline_instance("gpt2", ["jetson-nano", "jetson-orin-nx-16gb", "raspberry-pi-5"], bandwidth_bps=1e8)
    plan = ep.solve(p, "pipeline-dp").plan
    ep.export_plan(p, plan, "pipeedge", tmp_path)
    check_schema(tmp_path)
    back, hosts = read_pipeedge(tmp_path / "models.yml", tmp_path / "device_types.yml", tmp_path / "devices.yml",
                                "gpt2")
    assert back.model.n_blocks == p.model.n_blocks and len(hosts) == len(p.devices)
