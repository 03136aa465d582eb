"""The figures users expect, from ``compare()`` tables and validation reports.

Each function returns a ``matplotlib.figure.Figure`` (built with the object API, so no GUI
backend or global pyplot state is touched) and, given ``path``, saves it; the format follows the
suffix (``.png``, ``.svg``, ``.pdf``).

* :func:`objective_vs_param` -- objective (mean and min-max over seeds) against a swept
  parameter, one line per method (the papers' figures);
* :func:`gap_distribution` -- relative gap to the best bound, one box per method;
* :func:`solve_time_vs_size` -- solve time against instance size on log-log axes, with the
  fitted slope per method;
* :func:`predicted_vs_measured` -- measured against predicted latency with the ±10% band;
* :func:`pipeline_gantt` -- a pipeline schedule's stage timelines with the idle bubbles shaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeplan.errors import ProblemDataError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

SOLVED = ("optimal", "feasible")
FORMATS = (".png", ".svg", ".pdf")


def new_figure(size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Any]:
    """A constrained-layout Figure (object API, no pyplot state) and its one Axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig: Figure, path: str | Path | None) -> Figure:
    """Save ``fig`` to ``path`` (.png, .svg or .pdf; folders created) when given; returns ``fig``."""
    if path is not None:
        path = Path(path)
        if path.suffix.lower() not in FORMATS:
            raise ProblemDataError(f"`path` = {str(path)!r}; expected a file ending in {', '.join(FORMATS)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    return fig


def _need(df: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ProblemDataError(f"`df` lacks columns {missing}; expected a compare() table with {list(columns)}")


def objective_vs_param(df: pd.DataFrame, param: str, *, metric: str = "objective", path: str | Path | None = None,
                       title: str | None = None, ylabel: str | None = None) -> Figure:
    """Mean ``metric`` over seeds (band: min to max) against ``param``, one line per method."""
    _need(df, param, metric, "method", "status")
    ok = df[df["status"].isin(SOLVED)]
    fig, ax = new_figure()
    for method, g in ok.groupby("method", sort=False):
        stats = g.groupby(param)[metric].agg(["mean", "min", "max"]).sort_index()
        x = stats.index.to_numpy()
        ax.plot(x, stats["mean"], marker="o", label=str(method))
        ax.fill_between(x, stats["min"], stats["max"], alpha=0.15)
    ax.set_xlabel(param)
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or f"{metric} vs {param}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def gap_distribution(df: pd.DataFrame, *, column: str = "gap_to_best", methods: Iterable[str] | None = None,
                     path: str | Path | None = None, title: str | None = None) -> Figure:
    """Box plot of the relative gap to the best bound per method (in %), solved rows only."""
    _need(df, column, "method", "status")
    ok = df[df["status"].isin(SOLVED) & df[column].notna()]
    names = list(methods) if methods is not None else list(dict.fromkeys(ok["method"]))
    data = [100 * ok.loc[ok["method"] == m, column].to_numpy(dtype=float) for m in names]
    fig, ax = new_figure()
    ax.boxplot(data, tick_labels=names, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.random.default_rng(i).uniform(-0.08, 0.08, len(d)), d, s=8, alpha=0.4)
    ax.set_ylabel("gap to best bound (%)")
    ax.set_title(title or "distance from the optimum")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def solve_time_vs_size(df: pd.DataFrame, size: str, *, time: str = "solve_time", path: str | Path | None = None,
                       title: str | None = None) -> Figure:
    """Solve time against instance size (log-log), with the least-squares slope per method."""
    _need(df, size, time, "method")
    fig, ax = new_figure()
    for method, g in df[df[time].notna() & (df[time] > 0)].groupby("method", sort=False):
        x = g[size].to_numpy(dtype=float)
        y = g[time].to_numpy(dtype=float)
        label = str(method)
        if len(np.unique(x)) >= 2:
            slope = np.polyfit(np.log(x), np.log(y), 1)[0]
            label += f" (slope {slope:.2f})"
        (points,) = ax.loglog(x, y, "o", alpha=0.6, label=label)
        med = g.groupby(size)[time].median().sort_index()
        ax.loglog(med.index.to_numpy(dtype=float), med.to_numpy(), "-", alpha=0.8, color=points.get_color())
    ax.set_xlabel(size)
    ax.set_ylabel(f"{time} (s)")
    ax.set_title(title or f"{time} vs {size}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path)


def predicted_vs_measured(predicted: Sequence[float], measured: Sequence[float], *,
                          labels: Sequence[str] | None = None, band: float = 0.10, unit: str = "s",
                          path: str | Path | None = None, title: str | None = None) -> Figure:
    """Measured against predicted latency, the identity line and a ``±band`` relative band."""
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or not len(p):
        raise ProblemDataError(f"`predicted` has shape {p.shape} and `measured` {m.shape}; expected two equal, "
                               "non-empty 1-D sequences")
    fig, ax = new_figure((5.0, 5.0))
    hi = float(max(p.max(), m.max())) * 1.1
    lo = float(min(p.min(), m.min())) * 0.9
    xs = np.linspace(lo, hi, 50)
    ax.plot(xs, xs, "k-", lw=1, label="measured = predicted")
    ax.fill_between(xs, xs * (1 - band), xs * (1 + band), color="tab:green", alpha=0.15, label=f"±{band:.0%}")
    inside = np.abs(m - p) <= band * p
    ax.scatter(p[inside], m[inside], c="tab:blue", label=f"within band ({inside.sum()}/{len(p)})")
    ax.scatter(p[~inside], m[~inside], c="tab:red", label="outside band")
    if labels is not None:
        for x, y, s in zip(p, m, labels, strict=True):
            ax.annotate(str(s), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"predicted ({unit})")
    ax.set_ylabel(f"measured ({unit})")
    ax.set_title(title or "measured vs predicted")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def pipeline_gantt(timeline: Iterable[Mapping[str, Any]] | pd.DataFrame, *, path: str | Path | None = None,
                   title: str | None = None) -> Figure:
    """Stage timelines of a pipeline schedule; idle time inside each stage's span is shaded as bubbles.

    ``timeline`` rows have ``stage`` (name or index), ``start`` and ``end`` (seconds), and optionally
    ``kind`` (e.g. ``"fwd"``, ``"bwd"``, ``"send"``) and ``micro_batch`` (printed on the bar). A stage's
    bubble is its idle time between the schedule's first start and last end (pipeline fill and
    drain included); the title gives the total.
    """
    from matplotlib.patches import Patch

    rows = timeline.to_dict("records") if hasattr(timeline, "to_dict") else list(timeline)
    if not rows:
        raise ProblemDataError("`timeline` is empty; expected rows with stage, start and end")
    for i, r in enumerate(rows):
        if not {"stage", "start", "end"} <= set(r) or not r["end"] >= r["start"]:
            raise ProblemDataError(f"`timeline`[{i}] = {dict(r)!r}; expected stage, start <= end")
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    kinds = list(dict.fromkeys(r.get("kind", "compute") for r in rows))
    colours = {k: f"C{i}" for i, k in enumerate(kinds)}
    fig, ax = new_figure((8.0, 0.6 * len(stages) + 1.5))
    t_begin = min(r["start"] for r in rows)
    t_end = max(r["end"] for r in rows)
    total_bubble = 0.0
    for y, stage in enumerate(stages):
        bars = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["start"])
        for r in bars:
            ax.barh(y, r["end"] - r["start"], left=r["start"], color=colours[r.get("kind", "compute")],
                    edgecolor="k", lw=0.3)
            if "micro_batch" in r:
                ax.text((r["start"] + r["end"]) / 2, y, str(r["micro_batch"]), ha="center", va="center", fontsize=7)
        # Bubbles: this stage's idle time within the whole schedule (fill, drain and gaps between tasks).
        t = t_begin
        for r in [*bars, {"start": t_end, "end": t_end}]:
            if r["start"] > t:
                ax.barh(y, r["start"] - t, left=t, color="lightgrey", hatch="//", edgecolor="grey", lw=0.3)
                total_bubble += r["start"] - t
            t = max(t, r["end"])
    handles = [Patch(color=c, label=str(k)) for k, c in colours.items()]
    handles.append(Patch(facecolor="lightgrey", hatch="//", edgecolor="grey", label="bubble (idle)"))
    ax.set_yticks(range(len(stages)), [str(s) for s in stages])
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"pipeline schedule (bubbles {total_bubble:.3g} s)")
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    return save_figure(fig, path)


__all__ = ["gap_distribution", "new_figure", "objective_vs_param", "pipeline_gantt", "predicted_vs_measured",
           "save_figure", "solve_time_vs_size"]
