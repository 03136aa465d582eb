"""The partition part of ``edgeplan demo``: profile real zoo models here, solve, execute the best plan.

For a CNN (ResNet-18) and a transformer (GPT-2, small), :func:`partition_demo`:

1. profiles the model on this machine (torch.export blocks, FLOPs, measured block times);
2. states the split over a device / edge / cloud preset path (Raspberry Pi 4 -> T4 edge server -> A100,
   a 100 Mbit/s uplink and a 1 Gbit/s backhaul; FLOP-based times on those devices) for latency and for
   pipelined throughput with 4/8-bit transfers, and solves it with every applicable method (table: status,
   objective, bound, gap, time);
3. executes the best plan that uses more than one tier (latency first, else throughput) on this host: its
   tiers all run here, predicted with this machine's measured block times, the links emulated with paced
   loopback sockets; it prints predicted against measured.

``partition_demo()`` returns 0 when every exact method proved the same optimum and the execution ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PRESET_PATH = ("raspberry-pi-4", "edge-server-t4", "cloud-a100")
RATES_BPS = (100e6, 1e9)
LATENCIES_S = (5e-3, 10e-3)


def _table(problem: Any, out: Callable[[str], Any], time_limit: float) -> tuple[bool, Any]:
    import edgeplan as ep

    rows, best, opt = [], None, []
    for m in ep.available_methods(problem):
        try:
            r = ep.solve(problem, m, time_limit=time_limit)
        except ep.UnsupportedProblemError as exc:
            rows.append(f"  {m:<14} refused: {str(exc)[:70]}")
            continue
        kind = "exact" if r.method in ep.available_methods(problem, kind="exact") else "heuristic"
        fun = f"{1e3 * r.fun:10.3f}" if r.fun is not None else f"{'-':>10}"
        bound = f"{1e3 * r.bound:10.3f}" if r.bound is not None else f"{'-':>10}"
        gap = f"{r.gap:8.1e}" if r.gap is not None else f"{'-':>8}"
        rows.append(f"  {m:<14} {kind:<9} {r.status.value:<11} {fun} {bound} {gap} {1e3 * r.time:9.1f}")
        if r.has_plan and (best is None or r.fun < best.fun):
            best = r
        if kind == "exact" and r.status.value == "optimal":
            opt.append(r.fun)
    out(f"  {'method':<14} {'kind':<9} {'status':<11} {'value ms':>10} {'bound ms':>10} {'gap':>8} {'time ms':>9}")
    for row in rows:
        out(row)
    agree = bool(opt) and max(opt) - min(opt) <= 1e-4 * max(opt)
    return agree, best


def partition_demo(out: Callable[[str], Any] = print, *, time_limit: float = 10.0, repeats: int = 5) -> int:
    """Run the demo (see the module docstring); ``out`` prints a line."""
    from edgeplan.formulations.partition.instances import split_instance
    from edgeplan.validation.partition import execute as vp
    from edgeplan.validation.zoo import build_model

    ok = True
    for name, size in (("resnet18", "full"), ("gpt2", "small")):
        z = build_model(name, size=size)
        prof = vp.profile_on_host(z.module, z.example_inputs, repeats=repeats)
        m = prof.measurements[0]
        out(f"\n{name} ({size}): {prof.n_blocks} blocks, {prof.fwd_flops.sum() / 1e9:.2f} GFLOP, "
            f"{int(prof.num_params.sum()):,} parameters; measured here {1e3 * m.whole_time_s:.2f} ms "
            f"(blocks add up to {1e3 * m.block_time_s.sum():.2f} ms)")
        chosen = None
        for minimize, kw in (("latency", {}), ("throughput", {"bit_widths": (4, 8), "min_bits": 8})):
            p = split_instance(prof, PRESET_PATH, RATES_BPS, latencies_s=LATENCIES_S, minimize=minimize, **kw)
            out(f"split over {' -> '.join(PRESET_PATH)} minimizing {minimize} ({p.time_source[0].split()[0]} times)")
            agree, best = _table(p, out, time_limit)
            ok &= agree
            if best is not None and (chosen is None or chosen.plan.tier.max() == 0):
                chosen = best
        if chosen is None:
            ok = False
            continue
        host = vp.host_split_problem(prof, n_tiers=3, rates_bps=RATES_BPS, latencies_s=LATENCIES_S)
        rep = vp.validate_split(host, chosen.plan, z.module, z.example_inputs, link="socket", repeats=repeats)
        out(f"executing the {chosen.method} plan (tiers {chosen.plan.tier.tolist()}) here, block times measured here:")
        out(str(rep))
    return 0 if ok else 1


__all__ = ["partition_demo"]
