r"""Multi-process pipeline execution with ``torch.distributed`` (gloo over the loopback interface) for
:func:`edgeplan.validation.partition.execute.validate_pipeline`.

One process per stage (spawned), each rebuilding the model and its own stage sub-graph. Stage :math:`s` sends
to stage :math:`s+1` every value that a later stage reads and that was produced at or before :math:`s` (or is
a model input): exactly the tensors crossing the prefix cut, relayed stage by stage. Links are FIFO queues at
the planned rate: a message may leave when the stage has produced it and the link has delivered the previous
one; it arrives ``8 * bytes / rate`` later plus the link latency. The sender stamps the arrival time (a
CLOCK_MONOTONIC reading, common to the processes of a host) and sends at once with ``isend``; the receiver
waits for the stamp before computing, so compute overlaps transfers as in the flow-shop model. Every rank
records when it started and finished each micro-batch.

Timing. ``"concurrent"`` runs the stages at once, on wall-clock time: when the host has fewer cores than the
stages need, they share cores and every stage computes slower than it would on its own device (the gloo
pipeline measured +57 % on ResNet-18 and +124 % on GPT-2 over prediction on a 2-core host). ``"dilated"``
runs the same processes, data and transfers on a virtual clock: a stage computes only while it holds a lock
shared by the stages, so its compute is measured alone, and its micro-batch starts at
:math:`\max(\text{arrival}, \text{its previous end})` and ends a measured compute later; the link stamps
arrival times on the same clock. The result is the schedule the devices would run, replayed with the real
computation (time dilated: the run takes longer than the timeline it reports). ``"auto"`` is dilated when
stages x threads reach the host's cores (nothing left for gloo's transfer threads and the rest of the host).

Prediction. After each timed iteration, each stage process times each of its blocks once more (``calibrate``
passes over the stage's blocks in order, the median kept; when dilated, holding the lock): the prediction is the
problem's schedule model with these stage times and the planned links, so that it sees the host's speed in the
run's own processes and seconds (on a shared host the speed drifts by tens of per cent over minutes, and a
profile measured in another process carries that drift). The profile's own prediction is reported beside it.
Every rank runs in a steady allocator with huge pages for torch (:func:`run_ranks`).

The ranks meet through a file store in a private
temporary directory (nothing listens for the rendezvous) and gloo binds its pairs to the loopback interface
(``GLOO_SOCKET_IFNAME``), so nothing listens beyond loopback. The parent collects the timings from a queue,
joins the processes (terminating them after ``timeout_s``) and builds the report.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from datetime import timedelta
from typing import Any

import numpy as np

from edgeplan.errors import PlanError, ProblemDataError, SolverError
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan


def loopback_interface() -> str:
    """The name of the loopback interface (``lo`` on Linux, ``lo0`` on macOS), for ``GLOO_SOCKET_IFNAME``."""
    names = [name for _, name in socket.if_nameindex()]
    for name in ("lo", "lo0", *names):
        if name in names and name.startswith("lo"):
            return name
    raise SolverError(f"no loopback interface among {names}; the pipeline run binds to loopback only")


def _build(model: Any) -> Any:
    if isinstance(model, dict):
        from edgeplan.validation.zoo import build_model

        return build_model(model["name"], size=model["size"], batch_size=int(model["batch_size"]),
                           seed=int(model["seed"])).module
    return model


def join_group(rank: int, world: int, store: str, job: dict[str, Any]) -> Any:
    """In a stage process: set its threads, join the gloo group (rendezvous through a file store in a private
    directory: no listening socket, no port to race for; gloo's pairs bind to the loopback interface only) and
    build the model; returns the module."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(job["threads"])
    os.environ["GLOO_SOCKET_IFNAME"] = job["interface"]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=job["timeout_s"]))
    return _build(job["model"])


def block_parts(bg: Any, blocks: Any) -> tuple[list[Any], dict[str, Any]]:
    """Each block's own sub-graph, in order, and the values that feed the first of them (built once per stage
    process: the re-timing passes reuse them)."""
    parts = [bg.stage([v]) for v in blocks]
    need = {n for part in parts for n in part.inputs}
    return parts, {n: bg.example[n] if n in bg.example else bg.value(n) for n in need}


def time_blocks(parts: list[Any], start: dict[str, Any], repeats: int, lock: Any | None) -> list[float]:
    """Each block's forward seconds in this process: the stage run block by block (each block's sub-graph fed
    with what the blocks before it just produced, as the stage runs), ``repeats`` passes, each holding ``lock``
    when given (dilated timing: measured alone, as the run computes) or not (concurrent: beside the other
    stages, as the run computes); the median per block. (Writing a cache-sized buffer before each pass, as the
    CollaPipe executor does, made GPT-2's predictions 8-14 % high on this host and did not help ResNet-18's.)"""
    import contextlib

    import torch

    times = np.zeros((repeats, len(parts)))
    with torch.no_grad():
        for r in range(repeats if parts else 0):
            env = dict(start)
            with lock if lock is not None else contextlib.nullcontext():
                for i, part in enumerate(parts):
                    c0 = time.perf_counter()
                    env.update(part.run(env))
                    times[r, i] = time.perf_counter() - c0
    return [float(t) for t in np.median(times, axis=0)] if parts and repeats else []


def _worker(rank: int, world: int, store: str, job: dict[str, Any], results: Any, lock: Any) -> None:
    """One pipeline stage (runs in a spawned process)."""
    import torch
    import torch.distributed as dist

    try:
        module = join_group(rank, world, store, job)
        from edgeplan.profiles.model import ModelProfile
        from edgeplan.validation.partition.split import block_graph

        bg = block_graph(module, job["inputs"], ModelProfile.from_json(job["profile"]))
        b = job["boundaries"]
        stages = [bg.stage(range(b[s], b[s + 1])) for s in range(world)]
        produced = {n: s for s, st in enumerate(stages) for n in st.outputs}
        # names crossing each link: read by a later stage, produced at or before this one (inputs count as 0)
        cross = []
        for s in range(world - 1):
            need = [n for t in range(s + 1, world) for n in stages[t].inputs if produced.get(n, 0) <= s]
            cross.append(list(dict.fromkeys(need)))
        mine = stages[rank]
        with torch.no_grad():
            mine.run({**bg.example, **{n: bg.value(n) for n in mine.inputs if n not in bg.example}})   # warm up
        M, R = job["n_micro"], job["iterations"]
        dilated = job["dilated"]
        rate, lat = job["rate"], job["latency"]
        nbytes = 0.0

        def flat(values: list[Any]) -> Any:
            return torch.cat([v.contiguous().reshape(-1).view(torch.uint8) for v in values]) if values else \
                torch.zeros(0, dtype=torch.uint8)

        if rank > 0:                            # one message per micro-batch: an 8-byte stamp, then the tensors
            like = [bg.value(n) for n in cross[rank - 1]]
            sizes = [t.numel() * t.element_size() for t in like]
            buf = torch.zeros(8 + sum(sizes), dtype=torch.uint8)
        start, end, block_s = np.zeros((R, M)), np.zeros((R, M)), []
        parts, feed = block_parts(bg, range(b[rank], b[rank + 1])) if job["calibrate"] else ([], {})
        for it in range(R):
            dist.barrier()
            link_free, pending = 0.0, []
            for m in range(M):
                env = dict(bg.example)
                if rank > 0:
                    dist.recv(buf, src=rank - 1, tag=it * M + m)
                    stamp = float(buf[:8].view(torch.float64)[0])
                    pos = 8
                    for name, t, n in zip(cross[rank - 1], like, sizes, strict=True):
                        env[name] = buf[pos:pos + n].clone().view(t.dtype).reshape(t.shape)
                        pos += n
                    while not dilated and time.perf_counter() < stamp:
                        time.sleep(max(0.0, stamp - time.perf_counter()))
                if dilated:                         # compute alone, on the virtual clock
                    with lock, torch.no_grad():
                        c0 = time.perf_counter()
                        env.update(mine.run(env))
                        took = time.perf_counter() - c0
                    start[it, m] = max(stamp if rank > 0 else 0.0, end[it, m - 1] if m else 0.0)
                    end[it, m] = start[it, m] + took
                else:
                    start[it, m] = time.perf_counter()
                    with torch.no_grad():
                        env.update(mine.run(env))
                    end[it, m] = time.perf_counter()
                if rank < world - 1:
                    body = flat([env[n] for n in cross[rank]])
                    nbytes = float(body.numel())
                    leave = max(end[it, m], link_free)
                    link_free = leave + 8.0 * nbytes / rate[rank]
                    msg = torch.cat([torch.tensor([link_free + lat[rank]], dtype=torch.float64).view(torch.uint8),
                                     body])
                    pending.append(dist.isend(msg, dst=rank + 1, tag=it * M + m))
            for w in pending:
                w.wait()
            # this stage's blocks timed again in the same seconds as the iteration (the prediction's times)
            block_s.append(time_blocks(parts, feed, job["calibrate"], lock if dilated else None))
        dist.barrier()
        med = np.median(block_s[1:], axis=0).tolist() if job["calibrate"] else []  # not after the warm-up
        results.put((rank, start, end, nbytes, med, None))
        dist.destroy_process_group()
    except Exception:                                          # report, never hang the parent
        results.put((rank, None, None, 0.0, None, traceback.format_exc()))


def collect_ranks(procs: list[Any], results: Any, world: int, timeout_s: float, what: str) -> dict[int, Any]:
    """Each rank's report from ``results`` (tuples ``(rank, ..., error)``), within ``timeout_s``; the processes are
    joined (terminated when they outlive it). A rank's error, or a rank that never reported, is a
    :class:`SolverError` naming ``what``."""
    got: dict[int, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < world and time.monotonic() < deadline:
            try:
                item = results.get(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            except Exception:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            got[item[0]] = item
    finally:
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(timeout=5.0)
    failed = [g[-1] for g in got.values() if g[-1]]
    if failed or len(got) < world:
        detail = failed[0] if failed else f"only {len(got)} of {world} stages reported within {timeout_s} s"
        raise SolverError(f"{what} failed: {detail}")
    return got


def _steady_rank(target: Any, *args: Any) -> None:
    """A spawned rank: ``target(*args)`` inside :func:`~edgeplan.profiles.memory.steady_allocator`, so that the
    activations of micro-batches in flight reuse the process's memory instead of page-faulting it back (without
    it a training rank's backward ran 10-15 % slower in the pipeline than alone on this host)."""
    from edgeplan.profiles.memory import steady_allocator

    with steady_allocator():
        target(*args)


def run_ranks(target: Any, world: int, job: dict[str, Any], timeout_s: float, what: str) -> dict[int, Any]:
    """Spawn ``world`` processes ``target(rank, world, store, job, results, lock)`` (a file-store rendezvous in a
    private temporary directory, a queue for their reports, a lock for dilated timing), each in a steady
    allocator and with huge pages for torch's large tensors (``THP_MEM_ALLOC_ENABLE=1`` unless set), and collect
    their reports (:func:`collect_ranks`)."""
    import torch.multiprocessing as tmp

    ctx = tmp.get_context("spawn")
    results, lock = ctx.Queue(), ctx.Lock()
    before = os.environ.get("THP_MEM_ALLOC_ENABLE")
    with tempfile.TemporaryDirectory(prefix="edgeplan-gloo-") as private:  # mode 0700: ours alone
        store = os.path.join(private, "rendezvous")
        procs = [ctx.Process(target=_steady_rank, args=(target, r, world, store, job, results, lock), daemon=True)
                 for r in range(world)]
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # inherited by the children at start
        try:
            for p in procs:
                p.start()
        finally:
            if before is None:
                os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
        return collect_ranks(procs, results, world, timeout_s, what)


TIMINGS = ("auto", "concurrent", "dilated")


def run_pipeline(problem: PipelinePartition, plan: PipelinePlan, model: Any, inputs: Any, *,
                 timeout_s: float = 120.0, threads: int = 1, timing: str = "auto", calibrate: int = 3,
                 iterations: int = 3) -> Any:
    """See :func:`edgeplan.validation.partition.execute.validate_pipeline`."""
    from edgeplan.validation.partition.report import PartitionValidationReport, StageComparison

    if not isinstance(plan, PipelinePlan):
        raise PlanError(f"`plan` is a {type(plan).__name__}; expected a PipelinePlan")
    if timing not in TIMINGS:
        raise ProblemDataError(f"`timing` = {timing!r}; expected one of {', '.join(map(repr, TIMINGS))}")
    if isinstance(calibrate, bool) or not isinstance(calibrate, int) or calibrate < 0:
        raise ProblemDataError(f"`calibrate` = {calibrate!r}; expected a count of timed runs per block >= 0")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ProblemDataError(f"`iterations` = {iterations!r}; expected a count of timed iterations >= 1")
    if problem.training:
        raise ProblemDataError("validate_pipeline runs inference pipelines; the problem has mode='training'")
    problem.check(plan)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    if int(args[0].shape[0]) != problem.micro_batch:
        raise ProblemDataError(f"`inputs` hold a batch of {int(args[0].shape[0])}; expected one micro-batch of "
                               f"{problem.micro_batch}")
    S = plan.n_stages
    dev = plan.devices
    rate = [float(problem.rates_bps[dev[s], dev[s + 1]]) for s in range(S - 1)]
    lat = [float(problem.latency_s[dev[s], dev[s + 1]]) for s in range(S - 1)]
    job = {"model": model, "inputs": args, "profile": problem.model.to_json(), "boundaries": plan.boundaries.tolist(),
           "n_micro": problem.n_micro, "rate": rate, "latency": lat, "timeout_s": timeout_s, "threads": threads,
           "interface": loopback_interface(), "calibrate": int(calibrate),
           "iterations": iterations + 1}
    dilated = timing == "dilated" or (timing == "auto" and S * threads >= (os.cpu_count() or 1))
    job["dilated"] = dilated
    got = run_ranks(_worker, S, job, timeout_s, "the pipeline run")
    spans = np.array([got[S - 1][2][i, -1] - got[0][1][i, 0] for i in range(1, iterations + 1)])
    pick = 1 + int(np.argsort(spans)[(iterations - 1) // 2])  # the iteration of the median makespan
    measured = float(spans[pick - 1])
    t0 = min(float(got[s][1][pick, 0]) for s in got)
    m = problem.evaluate(plan)
    F = np.array([np.median(got[s][2][1:] - got[s][1][1:]) for s in range(S)])
    X = np.array([8.0 * got[s][3] / rate[s] for s in range(S - 1)])
    _, from_measured = problem.times_objective(F, np.zeros(S), X, np.asarray(lat))
    cal = [float(np.sum(got[s][4])) for s in range(S)] if calibrate else None
    pred_F = np.array(cal) if cal is not None else m.forward_s
    _, predicted = problem.times_objective(pred_F, np.zeros(S), m.link_s, np.asarray(lat))
    comps = []
    for s in range(S):
        comps.append(StageComparison(f"stage{s} (dev {int(dev[s])})", float(pred_F[s]), float(F[s]),
                                     f"blocks {plan.boundaries[s]}..{plan.boundaries[s + 1] - 1}"
                                     + (f"; profile {1e3 * m.forward_s[s]:.3f} ms" if cal is not None else "")))
        if s < S - 1:
            comps.append(StageComparison(f"link{s}", float(m.link_s[s]), float(X[s]),
                                         f"{got[s][3]:.0f} B per micro-batch (emulated FIFO)"))
    source = "block times re-measured in the stage processes" if cal is not None else "the profile's block times"
    return PartitionValidationReport(
        kind=f"pipeline ({S} processes, {problem.n_micro} micro-batches, {'dilated' if dilated else 'concurrent'} "
             f"timing; predicted from {source})", stages=tuple(comps),
        predicted_s=float(predicted), measured_s=float(measured), output_max_abs_error=0.0, output_rel_error=0.0,
        time_source=m.time_source,
        details={"start_s": {s: (got[s][1][pick] - t0).tolist() for s in got},
                 "end_s": {s: (got[s][2][pick] - t0).tolist() for s in got}, "iterations_s": spans.tolist(),
                 "profile_predicted_s": float(m.iteration_s), "profile_error": float(measured / m.iteration_s - 1)
                 if m.iteration_s > 0 else float("inf"),
                 "block_s": {s: list(got[s][4]) for s in got}, "iteration_from_measured_stages_s": from_measured})


__all__ = ["TIMINGS", "block_parts", "collect_ranks", "join_group", "run_pipeline", "run_ranks", "time_blocks"]
