"""The SLIDE reproduction table: which of the paper's numbers the ``"slide-paper"`` setting reproduces, and why not.

Runs the registered generator ``slide-paper`` (``edgeplan.formulations.slide.instances.paper_instance``) in both
compute regimes, computes each figure the paper reports, and writes the table between the markers
``<!-- reproduction:start -->`` and ``<!-- reproduction:end -->`` of ``docs/models/slide.md``. One script makes
the table; rerun it after a change to the setting.

Run: ``.venv/bin/python benchmarks/slide_reproduction.py [--seeds N]``.
"""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "models" / "slide.md"
METHODS = ("slide", "dai", "eba", "gbmp", "eecra")


FIG1_MODELS = ("resnet18-fp32", "resnet34-fp32", "resnet50-fp32")


def figure1_user(name: str, eta: float) -> Any:
    """Fig. 1's setting for one model: one Orin Nano user at 100 m on 30 MHz, the whole band, full clock."""
    from edgeplan.formulations.slide import SlideProvisioning
    from edgeplan.formulations.slide.instances import paper_device_fields
    from edgeplan.profiles.links import path_loss_macro_db
    from edgeplan.profiles.loading import load_slide_library

    lib = {m["name"]: m for m in load_slide_library()["models"]}
    return SlideProvisioning(layer_bits=[np.asarray(lib[name]["layer_bits"])],
                             layer_flops=[np.asarray(lib[name]["layer_flops"])],
                             channel_gain=10.0 ** (-path_loss_macro_db(np.array([100.0])) / 10.0),
                             admissible=[[True]], bandwidth_hz=30e6,
                             **paper_device_fields(np.array([True]), eta=eta, beta=100.0, deadline_s=10.0))


def full_clock(p: Any) -> Any:
    """The metrics of the single user served with the whole band at full clock."""
    from edgeplan.formulations.slide import SlidePlan

    return p.evaluate(SlidePlan([0], [1.0], [np.ones(p.n_layers[0])]))


def figure1_cut(eta: float) -> float:
    """Fig. 1: the mean latency cut of streaming vs download-then-infer over ResNet-18/34/50 fp32."""
    cuts = [1.0 - m.latency_s[0] / m.dai_latency_s[0] for m in (full_clock(figure1_user(n, eta)) for n in FIG1_MODELS)]
    return float(np.mean(cuts))


def served(seeds: int, **kw: Any) -> dict[str, float]:
    """Mean served-user ratio of every method over ``seeds`` instances of ``paper_instance(**kw)``."""
    from edgeplan import solve
    from edgeplan.formulations.slide.instances import paper_instance

    out = dict.fromkeys(METHODS, 0.0)
    for seed in range(seeds):
        p = paper_instance(seed=seed, **kw)
        for m in METHODS:
            out[m] += solve(p, m).require_plan().served.mean() / seeds
    return out


def binding(seeds: int, **kw: Any) -> tuple[float, float]:
    """Share of users servable with the whole band, and the median least share among them (K = 100)."""
    from edgeplan.formulations.slide.instances import paper_instance
    from edgeplan.solvers.slide.slide import pair_min_shares

    alone, shares = [], []
    for seed in range(seeds):
        _, table, _ = pair_min_shares(paper_instance(seed=seed, **kw))
        best = table.min(axis=1)
        alone.append(np.isfinite(best).mean())
        shares.extend(best[np.isfinite(best)].tolist())
    return float(np.mean(alone)), float(np.median(shares)) if shares else float("nan")


def rows(seeds: int) -> list[list[str]]:
    from edgeplan.formulations.slide.instances import REGIMES

    K_sweep = (60, 70, 80, 90, 100)
    res: dict[str, dict[str, Any]] = {}
    for regime in REGIMES:
        sweep = [served(seeds, n_users=k, regime=regime) for k in K_sweep]
        gains = {m: 100 * float(np.mean([s["slide"] - s[m] for s in sweep])) for m in METHODS[1:]}
        res[regime] = {"fig1": 100 * figure1_cut(REGIMES[regime]), "k100": 100 * sweep[-1]["slide"], "gains": gains,
                       "bind": binding(seeds, n_users=100, regime=regime),
                       "beta1": 100 * served(seeds, n_users=100, regime=regime, beta=1.0)["slide"],
                       "band": 100 * served(seeds, n_users=100, regime=regime, bandwidth_hz=1e9)["slide"]}
    e, d = res["eager"], res["datasheet"]

    def both(key: str, fmt: str = "{:.1f} %") -> str:
        return f"{fmt.format(e[key])} / {fmt.format(d[key])}"

    def gain(m: str) -> str:
        return f"{e['gains'][m]:+.1f} / {d['gains'][m]:+.1f} points"

    return [
        ["Fig. 1: latency cut of streaming vs download-then-infer (ResNet-18/34/50, 30 MHz)", "32.5 %",
         both("fig1"), "eager only: the cut needs compute to hide behind the download (0.3 s ResNet-18); at the "
                       "datasheet rate compute is ~10 ms and there is little to overlap"],
        ["Users served by SLIDE at K = 100 (B = 400 MHz, T = 800 ms)", "> 60.4 %", both("k100"),
         "no: bandwidth binds (and in the eager regime compute within the energy budget). Served alone (whole band): "
         f"{100 * e['bind'][0]:.0f} % / {100 * d['bind'][0]:.0f} % of users; median least share "
         f"{100 * e['bind'][1]:.1f} % / {100 * d['bind'][1]:.1f} % of the band, so ~{1 / e['bind'][1]:.0f} users fit. "
         f"With B = 1 GHz: {e['band']:.1f} % / {d['band']:.1f} %; with 4x the energy budget (beta = 1): "
         f"{e['beta1']:.1f} % / {d['beta1']:.1f} %"],
        ["Served-ratio gain over DAI (mean over K = 60..100)", "+14.1 / +14.7 points", gain("dai"),
         "in the eager regime, above the paper; in the datasheet regime streaming has little compute to hide"],
        ["Gain over equal bandwidth (EBA)", "+40 to +44 points", gain("eba"),
         "reproduced in size where bandwidth binds (equal shares starve every user)"],
        ["Gain over the smallest model (GBMP)", "+12 to +14 points", gain("gbmp"),
         "no: with our accuracy model the smallest admissible model is usually SLIDE's choice too"],
        ["Gain over the equal energy split (EECRA)", "+5 to +6 points", gain("eecra"),
         "small: the energy budget rarely binds once bandwidth does"],
    ]


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv if argv is not None else [])
    warnings.simplefilter("ignore")
    lines = ["| figure | paper | ours (eager / datasheet regime) | reproduced? why not |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(args.seeds)]
    table = (f"Generated by `benchmarks/slide_reproduction.py` ({args.seeds} seeds per point; generator "
             "`slide-paper`).\n\n" + "\n".join(lines))
    text = DOC.read_text()
    new = re.sub(r"<!-- reproduction:start -->.*<!-- reproduction:end -->",
                 f"<!-- reproduction:start -->\n{table}\n<!-- reproduction:end -->", text, flags=re.S)
    if new == text and "<!-- reproduction:start -->" not in text:
        block = f"<!-- reproduction:start -->\n{table}\n<!-- reproduction:end -->"
        new = text.rstrip("\n") + f"\n\n## Reproduction\n\n{block}\n"
    DOC.write_text(new)
    print(table)
    return table


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
