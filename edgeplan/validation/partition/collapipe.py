r"""A CollaPipe slot plan executed for one training iteration on a real encoder-decoder.

The model is built from a ``transformers`` ``BertConfig`` (seeded, nothing downloaded): the embeddings and
:math:`L` ``BertLayer`` blocks form the encoder, one more ``BertLayer`` and a vocabulary head the decoder, trained
on token prediction. One process per device holds its planned segment (the first also the embeddings) and one
"edge" process the decoder; they join a gloo group over loopback (file-store rendezvous in a private directory:
nothing listens beyond loopback) and run :math:`M` micro-batches under 1F1B, activations forward and gradients
back as real tensors, then an Adam step on every segment.

**Timing.** On a 2-core host the device processes cannot compute at once at their own speed, so each computes
only while it holds a lock shared by all (its compute is measured alone), and the iteration is replayed on a
virtual clock from the measured compute times (each op's median over ``iterations`` timed iterations after
a warm-up one) and the planned link times (the bytes each transfer really carried over the plan's rate,
half-duplex links served in the order transfers become ready): the same "dilated" timing as the gloo pipeline
validator. The wall-clock time of the run is reported beside it. Every rank runs in a steady allocator with
huge pages for torch (:func:`~edgeplan.validation.partition.gloo.run_ranks`): without it the micro-batches in
flight page-faulted their memory back and backward ops ran 10-15 % slower than the same op alone.

**Prediction.** :func:`host_slot` rebases the plan's slot on this host: every device runs at host speed and the
links keep the plan's bandwidth, power and gains. The blocks' forward and backward times come from the ranks
themselves: between the timed iterations each rank times its own blocks once more, alone and from cold caches
(:func:`time_segment`; ``remeasure`` steps each, the median over iterations kept), so the prediction sees the
host's speed of the same seconds (on this shared host it drifts by tens of per cent over minutes);
:func:`calibrate` in a separate process beforehand supplies the bytes and parameters, and its times give the
report's ``fresh_predicted_s``. The report sets the slot model's closed-form estimate
(``host_slot(...).evaluate(plan)``) and an exact replay of the same 1F1B schedule with these times beside the
measured iteration; per device the predicted against the measured compute per micro-batch, the bytes per
transfer and the peak resident memory above the built model (the kernel's high-water mark) against the model's
:math:`(\sigma - 4)\,n + \phi\, b\, a` (weights excluded: they exist before the iteration).
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.collapipe import CollaPipePlan, CollaPipeSlot
from edgeplan.profiles.memory import in_fresh_process
from edgeplan.registry import validator


@dataclass(frozen=True)
class ModelSpec:
    """The encoder-decoder's shape: a BERT-style encoder of ``n_blocks`` layers and one decoder layer.

    Attributes
    ----------
    n_blocks
        Encoder layers.
    d_model, heads, seq_len, vocab
        Hidden size, attention heads, tokens per sample, vocabulary.
    seed
        Weights and tokens.
    """

    n_blocks: int
    d_model: int = 128
    heads: int = 4
    seq_len: int = 32
    vocab: int = 512
    seed: int = 0


def build(spec: ModelSpec) -> dict[str, Any]:
    """Embeddings, encoder blocks, decoder layer and head, seeded (every process builds the same weights)."""
    import torch
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertEmbeddings, BertLayer

    cfg = BertConfig(hidden_size=spec.d_model, num_attention_heads=spec.heads, intermediate_size=4 * spec.d_model,
                     vocab_size=spec.vocab, max_position_embeddings=spec.seq_len, num_hidden_layers=spec.n_blocks,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg._attn_implementation = "eager"
    torch.manual_seed(spec.seed)
    return {"embeddings": BertEmbeddings(cfg), "blocks": torch.nn.ModuleList(BertLayer(cfg) for _ in
                                                                            range(spec.n_blocks)),
            "decoder": BertLayer(cfg), "head": torch.nn.Linear(spec.d_model, spec.vocab)}


def batch(spec: ModelSpec, size: int) -> Any:
    """Token ids of ``size`` sequences (seeded); the labels are the ids."""
    import torch

    g = torch.Generator().manual_seed(spec.seed + 1)
    return torch.randint(0, spec.vocab, (size, spec.seq_len), generator=g)


def _saved_bytes(fn: Any) -> tuple[Any, int]:
    import torch

    total = [0]

    def pack(t: Any) -> Any:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


#: Bytes written between timed calibration steps: more than the last-level cache of the hosts we run on (32 MiB).
EVICT_BYTES = 64 << 20
_evict: list[Any] = []


def evict_caches() -> None:
    """Write :data:`EVICT_BYTES` of scratch memory, so that the next step starts with cold caches, as a stage's
    compute in a run does after the other stages (processes on the same cores) have computed."""
    import torch

    if not _evict:
        _evict.append(torch.zeros(EVICT_BYTES // 4))
    _evict[0].add_(1.0)


def time_step(forward: Any, repeats: int, lock: Any | None = None, *, warmup: bool = True,
              ) -> tuple[float, float, int]:
    """``(forward s, backward s, bytes autograd saved)`` of ``forward()`` (a tensor: backward with ones; a scalar
    loss: plain backward), each time the median of ``repeats`` (after one warm-up step unless not ``warmup``),
    every step holding ``lock`` when given (so that it is measured alone, as the dilated run computes) and
    starting with cold caches (:func:`evict_caches`, as a run's op does after the other ranks')."""
    import contextlib

    import torch

    fs, bs, nbytes = [], [], 0
    skip = int(warmup)
    for _ in range(repeats + skip):
        with lock if lock is not None else contextlib.nullcontext():
            evict_caches()
            t0 = time.perf_counter()
            y, nbytes = _saved_bytes(forward)
            fs.append(time.perf_counter() - t0)
            evict_caches()  # the backward comes later in a run, after other ranks' ops
            t1 = time.perf_counter()
            y.backward(torch.ones_like(y) if y.dim() else None)
            bs.append(time.perf_counter() - t1)
    return float(np.median(fs[skip:])), float(np.median(bs[skip:])), nbytes


def time_segment(m: dict[str, Any], spec: ModelSpec, blocks: range, micro_batch: int, repeats: int,
                 lock: Any | None = None, *, edge: bool = False, warmup: bool = True,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward seconds and saved bytes of each block in ``blocks`` (block 0 with the embeddings) on
    one micro-batch, or of the decoder step (``edge``: decoder, head and loss) as one entry."""
    import torch

    ids = batch(spec, micro_batch)
    with torch.no_grad():
        x0 = m["embeddings"](input_ids=ids)
    rows = []
    if edge:
        rows.append(time_step(lambda: torch.nn.functional.cross_entropy(
            m["head"](m["decoder"](x0.detach().requires_grad_(True))).flatten(0, 1), ids.flatten()), repeats, lock,
            warmup=warmup))
    for v in blocks:
        def fwd(v: int = v) -> Any:
            x = m["embeddings"](input_ids=ids) if v == 0 else x0.detach().requires_grad_(True)
            return m["blocks"][v](x)

        rows.append(time_step(fwd, repeats, lock, warmup=warmup))
    f, b, n = (np.array(c, dtype=float) for c in zip(*rows, strict=True)) if rows else (np.zeros(0),) * 3
    return f, b, n


def calibrate(spec: ModelSpec, micro_batch: int, *, repeats: int = 5) -> dict[str, Any]:
    """Per block: forward and backward seconds per sample (:func:`time_segment`, median of ``repeats``),
    bytes autograd saves per sample, parameters (block 0 with the embeddings); the decoder step's seconds per
    sample; the bytes per sample of the hidden state crossing a cut. Sets torch to one thread (run it in its own
    process, as :func:`execute_slot_plan` does).

    Parameters
    ----------
    spec
        The model.
    micro_batch
        Samples per timed step.
    repeats
        Timed steps per block.
    """
    import torch

    torch.set_num_threads(1)
    m = build(spec)
    f, b, saved = time_segment(m, spec, range(spec.n_blocks), micro_batch, repeats)
    ef, eb, _ = time_segment(m, spec, range(0), micro_batch, repeats, edge=True)
    params = [sum(p.numel() for p in blk.parameters()) for blk in m["blocks"]]
    params[0] += sum(p.numel() for p in m["embeddings"].parameters())
    return {"block_f_s": f / micro_batch, "block_b_s": b / micro_batch, "block_s": (f + b) / micro_batch,
            "block_act_bytes": saved / micro_batch, "block_params": np.array(params, float),
            "edge_s": float(ef[0] + eb[0]) / micro_batch, "edge_f_s": float(ef[0]) / micro_batch,
            "hidden_bytes": float(spec.seq_len * spec.d_model * 4)}


def host_slot(slot: CollaPipeSlot, cal: dict[str, Any], *, d2e_rate_bps: float = 1e9) -> CollaPipeSlot:
    """The slot rebased on this host (module docstring): every device at host speed, the plan's links kept.

    Parameters
    ----------
    slot
        The planned slot.
    cal
        :func:`calibrate`'s measurements.
    d2e_rate_bps
        Rate of the hop to the edge and back.
    """
    rho = slot.backward_ratio
    K = slot.n_devices
    return dataclasses.replace(
        slot, block_flops=cal["block_s"] / (1.0 + rho), block_params=cal["block_params"],
        block_act_bytes=cal["block_act_bytes"], hidden_bytes=cal["hidden_bytes"], device_flops=np.ones(K),
        device_memory=np.full(K, np.inf), edge_s_per_sample=cal["edge_s"], d2e_rate_bps=d2e_rate_bps,
        name=f"{slot.name}-host")


def one_f_one_b(stage: int, stages: int, M: int) -> list[tuple[str, int]]:
    """The 1F1B order of one stage: warm-up forwards, then one forward and one backward, then the backwards."""
    warm = min(stages - stage - 1, M)
    ops = [("F", m) for m in range(warm)]
    for i in range(M - warm):
        ops += [("F", warm + i), ("B", i)]
    return ops + [("B", m) for m in range(M - warm, M)]


def replay(compute: list[dict[tuple[str, int], float]], link_s: list[float], M: int) -> float:
    """Iteration time of the 1F1B schedule: stage ``s`` runs its ops in :func:`one_f_one_b` order, each when its
    input has arrived and the stage is free; link ``s`` (between stages ``s`` and ``s+1``, half-duplex) carries
    each transfer for ``link_s[s]`` in the order the transfers become ready."""
    S = len(compute)
    order = [one_f_one_b(s, S, M) for s in range(S)]
    done: dict[tuple[int, str, int], float] = {}     # (stage, op, micro-batch) -> end
    arrive: dict[tuple[int, str, int], float] = {}   # input of (stage, op, micro-batch) -> arrival
    link_free = [0.0] * max(S - 1, 0)
    pos, free = [0] * S, [0.0] * S
    pending = sum(len(o) for o in order)
    while pending:
        progressed = False
        for s in range(S):
            while pos[s] < len(order[s]):
                op, m = order[s][pos[s]]
                if op == "F":
                    ready = 0.0 if s == 0 else arrive.get((s, "F", m))
                else:
                    ready = done.get((s, "F", m)) if s == S - 1 else arrive.get((s, "B", m))
                if ready is None:
                    break
                end = max(free[s], ready) + compute[s][(op, m)]
                done[(s, op, m)], free[s] = end, end
                if op == "F" and s < S - 1:  # activations to the next stage
                    link_free[s] = arrive[(s + 1, "F", m)] = max(end, link_free[s]) + link_s[s]
                elif op == "B" and s > 0:    # gradients to the previous stage
                    link_free[s - 1] = arrive[(s - 1, "B", m)] = max(end, link_free[s - 1]) + link_s[s - 1]
                pos[s] += 1
                pending -= 1
                progressed = True
        if not progressed:
            raise RuntimeError("the 1F1B replay is stuck (a schedule bug)")
    return max(done.values())


def _rank(rank: int, world: int, store: str, job: dict[str, Any], results: Any, lock: Any) -> None:
    try:
        import torch
        import torch.distributed as dist

        from edgeplan.profiles.memory import MemoryProbe
        from edgeplan.validation.partition.gloo import join_group

        join_group(rank, world, store, {**job, "model": None})
        spec, M, b, edge = job["spec"], job["M"], job["b"], world - 1
        m = build(spec)
        ids = batch(spec, M * b)
        lo, hi = job["ranges"][rank] if rank < edge else (0, 0)
        if rank < edge:
            mods = torch.nn.ModuleList([*([m["embeddings"]] if rank == 0 else []), *m["blocks"][lo:hi]])
        else:
            mods = torch.nn.ModuleList([m["decoder"], m["head"]])
        # keep what this rank runs and re-times (the embeddings make every rank's input): not the other blocks
        m = {"embeddings": m["embeddings"], "blocks": {v: m["blocks"][v] for v in range(lo, hi)},
             **({"decoder": m["decoder"], "head": m["head"]} if rank == edge else {})}
        opt = torch.optim.Adam(mods.parameters(), lr=1e-4)
        shape = (b, spec.seq_len, spec.d_model)
        kept, comp, sent, works, again = {}, {}, [], [], []
        evict_caches()  # its scratch is allocated before the memory probe starts
        with MemoryProbe() as probe:
            for it in range(job["iterations"] + 1):  # the first a warm-up
                t_wall = time.perf_counter()
                for op, mb in one_f_one_b(rank, world, M):
                    tok = ids[mb * b:(mb + 1) * b]
                    if op == "F":
                        x = None
                        if rank > 0:
                            x = torch.empty(shape)
                            dist.recv(x, rank - 1)
                            x.requires_grad_(True)
                        with lock:
                            t0 = time.perf_counter()
                            if rank == edge:
                                y = torch.nn.functional.cross_entropy(mods[1](mods[0](x)).flatten(0, 1),
                                                                      tok.flatten())
                            else:
                                y = mods[0](input_ids=tok) if rank == 0 else x
                                for blk in (mods[1:] if rank == 0 else mods):
                                    y = blk(y)
                            dt = time.perf_counter() - t0
                        kept[mb] = (x, y)
                        if rank < edge:
                            out = y.detach().contiguous()
                            works.append((dist.isend(out, rank + 1), out))
                            sent.append(out.numel() * out.element_size())
                    else:
                        x, y = kept.pop(mb)
                        g = None
                        if rank < edge:
                            g = torch.empty(shape)
                            dist.recv(g, rank + 1)
                        with lock:
                            t0 = time.perf_counter()
                            y.backward(g)
                            dt = time.perf_counter() - t0
                        if rank > 0:
                            gx = x.grad.contiguous()
                            works.append((dist.isend(gx, rank - 1), gx))
                            sent.append(gx.numel() * gx.element_size())
                    if it:
                        comp.setdefault((op, mb), []).append(dt)
                for w, _ in works:
                    w.wait()
                works.clear()
                with lock:
                    opt.step()
                    opt.zero_grad()
                wall = time.perf_counter() - t_wall  # the last iteration's
                if it and job["remeasure"]:  # this rank's blocks again, alone, between the timed iterations
                    again.append(time_segment(m, spec, range(lo, hi), b, job["remeasure"], lock, edge=rank == edge,
                                              warmup=False))
                    opt.zero_grad()
        f, bw = (np.median([r[i] for r in again], axis=0) for i in (0, 1)) if again else (np.zeros(0),) * 2
        comp = {k: float(np.median(v)) for k, v in comp.items()}  # each op's median over the timed iterations
        results.put((rank, {"compute": comp, "sent": sent, "wall_s": wall, "peak_bytes": probe.peak_mb * 2**20,
                            "block_f_s": f, "block_b_s": bw}, ""))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:  # reported to the parent
        results.put((rank, None, traceback.format_exc()))


@dataclass(frozen=True)
class CollaPipeRun:
    """One executed iteration against its predictions (see the module docstring).

    Attributes
    ----------
    predicted_s, replayed_s, measured_s
        Iteration time: the slot model's closed-form estimate and the exact 1F1B replay, both with the block
        times re-measured in the ranks' processes, and the replay with the times measured in the run.
    wall_s
        The run's wall-clock time (dilated: stages took turns computing).
    rows
        Per stage (devices, then the edge): predicted and measured compute per micro-batch (s), bytes per
        transfer planned and sent, peak memory predicted and measured (bytes).
    fresh_predicted_s
        The slot model's estimate with the block times of :func:`calibrate` (a separate process before the run).
    """

    predicted_s: float
    replayed_s: float
    measured_s: float
    wall_s: float
    rows: list[dict[str, Any]]
    fresh_predicted_s: float = float("nan")

    @property
    def error(self) -> float:
        """Measured over the slot model's estimate, minus 1."""
        return self.measured_s / self.predicted_s - 1.0

    @property
    def replay_error(self) -> float:
        """Measured over the exact replay of the planned schedule, minus 1."""
        return self.measured_s / self.replayed_s - 1.0

    def __str__(self) -> str:
        lines = [f"CollaPipe iteration: measured {1e3 * self.measured_s:.1f} ms; predicted {1e3 * self.replayed_s:.1f} "
                 f"ms by the exact 1F1B replay ({self.replay_error:+.1%}), {1e3 * self.predicted_s:.1f} ms by the "
                 f"slot model ({self.error:+.1%}); wall {1e3 * self.wall_s:.0f} ms (dilated)",
                 f"{'stage':<10}{'compute pred ms':>16}{'meas':>9}{'bytes planned':>15}{'sent':>9}"
                 f"{'memory pred MB':>16}{'meas':>9}"]
        for r in self.rows:
            lines.append(f"{r['stage']:<10}{1e3 * r['compute_pred_s']:>16.2f}{1e3 * r['compute_meas_s']:>9.2f}"
                         f"{r['bytes_planned']:>15.0f}{r['bytes_sent']:>9.0f}{r['memory_pred_bytes'] / 2**20:>16.1f}"
                         f"{r['memory_meas_bytes'] / 2**20:>9.1f}")
        return "\n".join(lines)


@validator(CollaPipeSlot, "one training iteration on a BERT-style encoder-decoder (gloo, 1F1B, dilated)")
def validate_collapipe(problem: CollaPipeSlot, plan: CollaPipePlan, *, device: str = "cpu") -> CollaPipeRun:
    """The CollaPipe validator (``edgeplan validate``): :func:`execute_slot_plan` on an encoder-decoder of the
    slot's depth whose hidden state has the slot's bytes per sample (BERT-base's 768 x 128 in fp32 for the
    generator's slots; else :math:`d = 256` and the sequence that gives those bytes, at least 8).

    Parameters
    ----------
    problem, plan
        The slot and its plan.
    device
        ``"cpu"`` only.
    """
    if device != "cpu":
        raise ProblemDataError(f"`device` = {device!r}; the CollaPipe executor runs on 'cpu'")
    per_sample = int(problem.hidden_bytes) // 4
    d, seq = (768, 128) if per_sample == 768 * 128 else (256, max(8, per_sample // 256))
    return execute_slot_plan(problem, plan, ModelSpec(problem.n_blocks, d_model=d, heads=d // 64, seq_len=seq))


def execute_slot_plan(slot: CollaPipeSlot, plan: CollaPipePlan, spec: ModelSpec, *, d2e_rate_bps: float = 1e9,
                      iterations: int = 3, remeasure: int = 5, timeout_s: float = 300.0) -> CollaPipeRun:
    """Run one training iteration of ``plan`` on ``spec``'s encoder-decoder (module docstring). Spawns
    processes: call it under ``if __name__ == "__main__":`` in a script.

    Parameters
    ----------
    slot
        The slot the plan was made for (its encoder must have ``spec.n_blocks`` blocks).
    plan
        Its plan.
    spec
        The encoder-decoder to build.
    d2e_rate_bps
        Rate of the hop from the last device to the edge and back.
    iterations
        Timed iterations after a warm-up one; each op's compute is its median over them.
    remeasure
        Timed steps per block with which each rank re-measures its blocks after each timed iteration, alone
        (the median over all is kept): these times make the prediction. 0: predict from :func:`calibrate`'s
        separate process.
    timeout_s
        Processes still running after this are terminated.
    """
    from edgeplan.validation.partition.gloo import loopback_interface, run_ranks

    if isinstance(remeasure, bool) or not isinstance(remeasure, int) or remeasure < 0:
        raise ProblemDataError(f"`remeasure` = {remeasure!r}; expected a count of timed steps per block >= 0")
    if spec.n_blocks != slot.n_blocks:
        raise ProblemDataError(f"`spec.n_blocks` = {spec.n_blocks}; expected the slot's {slot.n_blocks}")
    M = plan.micro_batches
    b = slot.batch_size // M
    cal = in_fresh_process(calibrate, spec, b, steady=False)  # a process like the ranks', one thread
    fresh = host_slot(slot, cal, d2e_rate_bps=d2e_rate_bps).evaluate(plan).iteration_s
    ends = np.cumsum(plan.segments)
    ranges = [(int(e - n), int(e)) for n, e in zip(plan.segments, ends, strict=True)]
    K = slot.n_devices
    world = K + 1
    job = {"spec": spec, "M": M, "b": b, "ranges": ranges, "threads": 1, "interface": loopback_interface(),
           "timeout_s": timeout_s, "iterations": iterations,
           "remeasure": remeasure}
    got = {r: item[1] for r, item in run_ranks(_rank, world, job, timeout_s, "CollaPipe iteration").items()}
    if remeasure:  # the ranks' own re-measured times (per micro-batch), per sample as the slot model takes them
        f = np.concatenate([got[r]["block_f_s"] for r in range(K)]) / b
        bw = np.concatenate([got[r]["block_b_s"] for r in range(K)]) / b
        cal = {**cal, "block_f_s": f, "block_b_s": bw, "block_s": f + bw,
               "edge_s": float(got[K]["block_f_s"][0] + got[K]["block_b_s"][0]) / b,
               "edge_f_s": float(got[K]["block_f_s"][0]) / b}
    host = host_slot(slot, cal, d2e_rate_bps=d2e_rate_bps)
    pred = host.evaluate(plan)
    e_s, y_s = host.edge_stage_s(M)
    per_xfer = [x / 2 for x in pred.link_s] + [y_s / 2]  # one direction of each hop
    fwd = [b * float(cal["block_f_s"][lo:hi].sum()) for lo, hi in ranges] + [b * cal["edge_f_s"]]
    both = [*pred.compute_s, e_s]
    planned_c = [{(op, m): fwd[s] if op == "F" else both[s] - fwd[s] for op in "FB" for m in range(M)}
                 for s in range(world)]
    measured_c = [got[r]["compute"] for r in range(world)]
    phi = np.minimum(M, K - np.arange(K)) if slot.schedule == "1f1b" else np.full(K, M)
    a = [float(cal["block_act_bytes"][lo:hi].sum()) for lo, hi in ranges]
    n = [float(cal["block_params"][lo:hi].sum()) for lo, hi in ranges]
    rows = []
    for r in range(world):
        c = got[r]["compute"]
        meas = float(np.median([c[("F", m)] + c[("B", m)] for m in range(M)]))
        rows.append({"stage": f"device {r}" if r < K else "edge", "compute_pred_s": pred.compute_s[r] if r < K
                     else e_s, "compute_meas_s": meas,
                     "bytes_planned": cal["hidden_bytes"] * b, "bytes_sent": float(np.median(got[r]["sent"]))
                     if got[r]["sent"] else 0.0,
                     "memory_pred_bytes": (slot.state_bytes_per_param - 4) * n[r] + phi[r] * b * a[r] if r < K
                     else float("nan"), "memory_meas_bytes": got[r]["peak_bytes"]})
    return CollaPipeRun(float(pred.iteration_s), replay(planned_c, per_xfer, M), replay(measured_c, per_xfer, M),
                        max(got[r]["wall_s"] for r in range(world)), rows, float(fresh))


__all__ = ["EVICT_BYTES", "CollaPipeRun", "ModelSpec", "build", "calibrate", "evict_caches", "execute_slot_plan",
           "host_slot", "one_f_one_b", "replay", "time_segment", "time_step", "validate_collapipe"]
