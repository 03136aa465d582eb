r"""PipeEdge's scheduler files: read its YAML into a :class:`PipelinePartition`, write one back, and schedules.

PipeEdge (Hu, Imes, Zhao, Mundra, Crowley, Noureddine, Smith, Lin, Wei, Beck, Sethi, Patel, "PipeEdge: Pipeline
Parallelism for Large-Scale Model Inference on Heterogeneous Edge Devices", DSD 2022; code usc-isi/PipeEdge)
describes a scheduling instance in three files (``README_Scheduler.md``):

* ``models.yml``: ``{model: {layers, mem_MB: [per layer], parameters_in, parameters_out: [per layer]}}``
  (parameters are elements per sample);
* ``device_types.yml``: ``{type: {bw_Mbps, mem_MB, model_profiles: {model: [{batch_size, dtype, time_s}]}}}``;
* ``devices.yml``: ``{type: [host, ...]}``;

and a schedule as ``[{host: [first_layer, last_layer]}, ...]`` (1-based, inclusive, in stage order). Its
scheduler minimizes the bottleneck over a free device subset and order, with a link between two devices at
the smaller of their bandwidths (Mbit/s of :math:`2^{20}` bit), layer memory plus receive/send buffers
(``data_buffers``) within each device's memory: exactly :class:`PipelinePartition` with ``order="free"``,
``minimize="bottleneck"``, :func:`rate_matrix` and ``data_buffers``. Layers map to blocks of a chain profile
whose measured times are the device types' ``time_s`` (keyed by type name) and whose weights are ``mem_MB``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan, rate_matrix
from edgeplan.profiles.devices import DTYPE_BYTES, DeviceProfile, PowerModel
from edgeplan.profiles.model import Measurement, ModelProfile

#: PipeEdge's Mbit/s and MB (``bw_Mbps * 1024 * 1024`` bit/s, ``mem_MB * 1024 * 1024`` bytes).
MEGA = 1024.0 * 1024.0
TORCH_DTYPES = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.float64": "fp64"}


def _load(path: str | Path) -> Any:
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ProblemDataError(f"PipeEdge file `{p}` cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ProblemDataError(f"PipeEdge file `{p}` is not valid YAML: {exc}") from exc


def _key(data: Any, key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise ProblemDataError(f"{where}: missing key `{key}`")
    return data[key]


def _generic_device(name: str, memory_bytes: float) -> DeviceProfile:
    """A device profile that only carries a name and memory (PipeEdge's times are measured per type)."""
    return DeviceProfile(name=name, device_class="edge-server", peak_flops_per_s={"fp32": 1e12}, efficiency=1.0,
                         memory_bytes=memory_bytes if math.isfinite(memory_bytes) else 1e15,
                         memory_bandwidth_bytes_per_s=1e11, clock_min_hz=1e9, clock_max_hz=1e9,
                         power=PowerModel(0.0, "kappa"), source="PipeEdge device type")


def read_pipeedge(models: str | Path, device_types: str | Path, devices: str | Path, model: str, *,
                  batch_size: int | None = None, dtype: str = "torch.float32",
                  data_buffers: tuple[int, int] = (1, 1)) -> tuple[PipelinePartition, list[str]]:
    """A :class:`PipelinePartition` and the host of each device, from PipeEdge's three YAML files.

    ``batch_size`` selects the profiled micro-batch size (default: the first profile of the model);
    ``data_buffers`` are PipeEdge's receive/send buffer counts (``-i``/``-o`` of ``sched-pipeline``).
    """
    mdoc, tdoc, ddoc = _load(models), _load(device_types), _load(devices)
    entry = _key(mdoc, model, f"PipeEdge file `{models}`")
    L = int(_key(entry, "layers", f"`{models}` model {model!r}"))
    mem = np.asarray(_key(entry, "mem_MB", f"`{models}` model {model!r}"), dtype=float) * MEGA
    p_out = np.asarray(_key(entry, "parameters_out", f"`{models}` model {model!r}"), dtype=float)
    p_in = float(_key(entry, "parameters_in", f"`{models}` model {model!r}"))
    if mem.shape != (L,) or p_out.shape != (L,):
        raise ProblemDataError(f"`{models}` model {model!r}: `mem_MB` and `parameters_out` need {L} entries (layers)")
    if dtype not in TORCH_DTYPES:
        raise ProblemDataError(f"`dtype` = {dtype!r}; expected one of {sorted(TORCH_DTYPES)}")
    ours = TORCH_DTYPES[dtype]
    size = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp64": 8.0}[ours]
    if not isinstance(ddoc, Mapping):
        raise ProblemDataError(f"PipeEdge file `{devices}` holds a {type(ddoc).__name__}; expected a mapping of "
                               "device types to hosts")
    devs, hosts, bws, caps, meas = [], [], [], [], {}
    for tname, host_list in ddoc.items():
        if not host_list:
            continue
        t = _key(tdoc, tname, f"PipeEdge file `{device_types}`")
        profiles = (t.get("model_profiles") or {}).get(model)
        if not profiles:
            raise ProblemDataError(f"`{device_types}` type {tname!r} has no profile of model {model!r}")
        prof = next((x for x in profiles if batch_size is None or (x.get("batch_size") == batch_size
                     and x.get("dtype", dtype) == dtype)), None)
        if prof is None:
            raise ProblemDataError(f"`{device_types}` type {tname!r} has no {model!r} profile at batch size "
                                   f"{batch_size} and dtype {dtype}")
        b = int(prof["batch_size"])
        if batch_size is None:
            batch_size = b
        times = np.asarray(prof["time_s"], dtype=float)
        if times.shape != (L,):
            raise ProblemDataError(f"`{device_types}` type {tname!r}: `time_s` has {times.size} entries; expected {L}")
        meas[tname] = Measurement(device=str(tname), batch_size=b, dtype=ours, block_time_s=times,
                                  whole_time_s=float(times.sum()), method="pipeedge")
        cap = float(t.get("mem_MB", math.inf)) * MEGA
        for h in host_list:
            devs.append(_generic_device(str(tname), cap))
            hosts.append(str(h))
            bws.append(float(_key(t, "bw_Mbps", f"`{device_types}` type {tname!r}")) * MEGA)
            caps.append(cap)
    if not devs:
        raise ProblemDataError(f"PipeEdge file `{devices}` lists no host; expected at least one device")
    profile = ModelProfile.chain(model, np.zeros(L), p_out * size, num_params=np.zeros(L, dtype=np.int64),
                                 input_bytes=p_in * size, buffer_bytes=mem, act_dtype=ours, param_dtype=ours,
                                 measurements=tuple(meas.values()), meta={"source": "pipeedge"})
    problem = PipelinePartition(profile, devs, rates_bps=rate_matrix(bws), order="free", minimize="bottleneck",
                                micro_batch=int(batch_size), dtype=ours, memory_cap_bytes=caps,
                                data_buffers=data_buffers, name=f"pipeedge-{model}")
    return problem, hosts


def write_pipeedge(problem: PipelinePartition, out_dir: str | Path, *, hosts: Sequence[str] | None = None,
                   model: str | None = None) -> list[Path]:
    """Write ``models.yml``, ``device_types.yml`` and ``devices.yml`` describing ``problem`` for PipeEdge.

    The links must follow PipeEdge's rule (``rates_bps == rate_matrix(bandwidth)``); boundary sizes are the
    bytes crossing each prefix cut, as element counts of the compute dtype; times are forward times per
    micro-batch; a type is a :meth:`PipelinePartition.device_classes` class.
    """
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    K = problem.n_devices
    R = problem.rates_bps
    bw = np.array([np.max(np.where(np.arange(K) == d, 0.0, R[d])) if K > 1 else 1e9 for d in range(K)])
    if K > 2 and not np.allclose(rate_matrix(bw)[~np.eye(K, dtype=bool)], R[~np.eye(K, dtype=bool)], rtol=1e-9):
        raise ProblemDataError("`rates_bps` does not follow PipeEdge's rule (a link at the smaller of its ends' "
                               "bandwidths); PipeEdge cannot describe these links")
    d = problem.data()
    torch_dtype = {ours: theirs for theirs, ours in TORCH_DTYPES.items()}.get(problem.dtype)
    if torch_dtype is None:
        raise ProblemDataError(f"`dtype` = {problem.dtype!r}; PipeEdge's profiles name torch dtypes: expected one "
                               f"of {sorted(TORCH_DTYPES.values())}")
    size = DTYPE_BYTES[problem.dtype]       # element counts of the dtype the plan assumes, and that dtype named
    name = model or problem.model.name
    L = problem.n_blocks
    weights = problem.model.num_params * size + problem.model.buffer_bytes
    models = {name: {"layers": L, "mem_MB": (weights / MEGA).tolist(),
                     "parameters_in": round(d["boundary"][0] / problem.micro_batch / size),
                     "parameters_out": [round(x / problem.micro_batch / size) for x in d["boundary"][1:]]}}
    names = type_names(problem)
    host_of = device_hosts(problem, hosts)
    types: dict[str, Any] = {}
    devs: dict[str, list[str]] = {}
    for i in range(K):
        t = names[i]
        devs.setdefault(t, []).append(host_of[i])
        if t in types:
            continue
        cap = problem.memory_cap_bytes[i]
        types[t] = {"bw_Mbps": float(bw[i] / MEGA), "mem_MB": float(cap / MEGA) if np.isfinite(cap) else 1e12,
                    "model_profiles": {name: [{"batch_size": problem.micro_batch, "dtype": torch_dtype,
                                               "time_s": d["fwd"][i].tolist()}]}}
    paths = []
    for fname, doc in (("models.yml", models), ("device_types.yml", types), ("devices.yml", devs)):
        p = out / fname
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(p)
    return paths


def type_names(problem: PipelinePartition) -> list[str]:
    """PipeEdge device-type name of each device: its class's first device name (made unique per class)."""
    label = problem.device_classes()
    taken: dict[str, int] = {}
    name_of: dict[int, str] = {}
    out = []
    for i, c in enumerate(label.tolist()):
        if c not in name_of:
            base = problem.devices[i].name
            name_of[c] = base if base not in taken else f"{base}-{c}"
            taken[name_of[c]] = c
        out.append(name_of[c])
    return out


def device_hosts(problem: PipelinePartition, hosts: Sequence[str] | None = None) -> list[str]:
    """The host of each device: ``hosts`` as given, else ``<type>-<k>`` (k counting within the type)."""
    if hosts is not None:
        if len(hosts) != problem.n_devices:
            raise ProblemDataError(f"`hosts` has {len(hosts)} names; expected {problem.n_devices}, one per device")
        return [str(h) for h in hosts]
    count: dict[str, int] = {}
    out = []
    for t in type_names(problem):
        out.append(f"{t}-{count.get(t, 0)}")
        count[t] = count.get(t, 0) + 1
    return out


def schedule_yaml(plan: PipelinePlan, hosts: Sequence[str]) -> list[dict[str, list[int]]]:
    """PipeEdge's schedule of ``plan``: ``[{host: [first, last]}]``, layers 1-based and inclusive."""
    b = plan.boundaries
    return [{str(hosts[int(dev)]): [int(b[s]) + 1, int(b[s + 1])]} for s, dev in enumerate(plan.devices)]


def plan_from_schedule(schedule: Sequence[Mapping[str, Sequence[int]]], hosts: Sequence[str]) -> PipelinePlan:
    """The plan of a PipeEdge schedule (inverse of :func:`schedule_yaml`); unknown hosts raise ``PlanError``."""
    index = {h: i for i, h in enumerate(hosts)}
    bounds, devs = [0], []
    for s, stage in enumerate(schedule):
        if not isinstance(stage, Mapping) or len(stage) != 1:
            raise PlanError(f"schedule stage {s} = {stage!r}; expected one `host: [first, last]` entry")
        (host, rng), = stage.items()
        if host not in index:
            raise PlanError(f"schedule stage {s} names the unknown host {host!r}; expected one of {list(hosts)}")
        first, last = (int(x) for x in rng)
        if first != bounds[-1] + 1:
            raise PlanError(f"schedule stage {s} starts at layer {first}; expected {bounds[-1] + 1} (contiguous)")
        bounds.append(last)
        devs.append(index[host])
    return PipelinePlan(np.array(bounds), np.array(devs))


__all__ = ["MEGA", "device_hosts", "plan_from_schedule", "read_pipeedge", "schedule_yaml", "type_names",
           "write_pipeedge"]
