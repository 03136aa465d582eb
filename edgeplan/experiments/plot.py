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
#: Marker and line style per series, in order: curves that coincide stay told apart.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")
#: Units of the compare table's columns (axis labels).
UNITS = {"solve_time": "s", "build_time": "s", "peak_mem_mb": "MiB", "gap": "relative", "gap_to_best": "relative"}


def series_style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``i``-th series: no two of the first 20 look alike."""
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[(i // 2 + i) % len(LINESTYLES)], "markerfacecolor": "none" if i % 2 else None}


def _label(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


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
                       title: str | None = None, ylabel: str | None = None, unit: str | None = None,
                       xunit: str | None = None) -> Figure:
    """Mean ``metric`` over seeds (band: min to max) against ``param``, one line per method.

    Each method has its own colour, marker and line style (methods that tie stay visible); the legend says
    what the lines and bands are.

    Parameters
    ----------
    df
        A :func:`~edgeplan.experiments.compare.compare` table (or :func:`read_results`); solved rows are drawn.
    param
        The swept parameter column (x axis).
    metric
        The column drawn (default ``objective``).
    path
        Save the figure there (.png, .svg or .pdf).
    title, ylabel
        Title and y label (default: the metric's name).
    unit, xunit
        Units on the axes (``unit`` defaults to the column's known unit, :data:`UNITS`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    _need(df, param, metric, "method", "status")
    ok = df[df["status"].isin(SOLVED)]
    fig, ax = new_figure()
    for i, (method, g) in enumerate(ok.groupby("method", sort=False)):
        stats = g.groupby(param)[metric].agg(["mean", "min", "max"]).sort_index()
        x = stats.index.to_numpy()
        style = series_style(i)
        ax.plot(x, stats["mean"], label=f"{method} (mean)", **style)
        ax.fill_between(x, stats["min"], stats["max"], alpha=0.12, color=style["color"])
    ax.set_xlabel(_label(param, xunit))
    ax.set_ylabel(_label(ylabel or metric, unit if unit is not None else UNITS.get(metric)))
    ax.set_title(title or f"{metric} vs {param}")
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.25, label="band: min to max over seeds"))
    ax.legend(handles=handles, fontsize=8)
    return save_figure(fig, path)


def gap_distribution(df: pd.DataFrame, *, column: str = "gap_to_best", methods: Iterable[str] | None = None,
                     path: str | Path | None = None, title: str | None = None) -> Figure:
    """Box plot of the relative gap to the best bound per method (in %), solved rows only.

    Parameters
    ----------
    df
        A :func:`~edgeplan.experiments.compare.compare` table.
    column
        The gap column (default ``gap_to_best``).
    methods
        The methods to show, in order (default: all, in table order).
    path, title
        Save the figure there; its title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need(df, column, "method", "status")
    ok = df[df["status"].isin(SOLVED) & df[column].notna()]
    names = list(methods) if methods is not None else list(dict.fromkeys(ok["method"]))
    data = [100 * ok.loc[ok["method"] == m, column].to_numpy(dtype=float) for m in names]
    fig, ax = new_figure()
    from matplotlib.lines import Line2D

    ax.boxplot(data, tick_labels=names, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.random.default_rng(i).uniform(-0.08, 0.08, len(d)), d, s=8, alpha=0.4,
                   color="C0")
    ax.set_ylabel("gap to best bound (%)")
    ax.set_title(title or "distance from the optimum")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(handles=[Line2D([], [], color="C1", label="median (box: quartiles, whiskers: 1.5 IQR)"),
                       Line2D([], [], marker="^", color="green", ls="", label="mean"),
                       Line2D([], [], marker="o", color="C0", alpha=0.4, ls="", label="one run")], fontsize=8)
    return save_figure(fig, path)


def solve_time_vs_size(df: pd.DataFrame, size: str, *, time: str = "solve_time", path: str | Path | None = None,
                       title: str | None = None, xunit: str | None = None) -> Figure:
    """Solve time against instance size (log-log), with the least-squares slope per method.

    Runs stopped by a limit (the ``limit`` column: a time limit) are drawn as crosses and left out of the
    fit and of the median line: their time is the limit, not the method's. The legend gives each slope and
    how many runs it excludes.

    Parameters
    ----------
    df
        A :func:`~edgeplan.experiments.compare.compare` table.
    size
        The size column (x axis).
    time
        The time column (default ``solve_time``).
    path, title
        Save the figure there; its title.
    xunit
        Unit of the size axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    _need(df, size, time, "method")
    fig, ax = new_figure()
    limited_any = False
    for i, (method, g) in enumerate(df[df[time].notna() & (df[time] > 0)].groupby("method", sort=False)):
        limited = g["limit"].notna().to_numpy() if "limit" in g else np.zeros(len(g), dtype=bool)
        done = g[~limited]
        x = done[size].to_numpy(dtype=float)
        y = done[time].to_numpy(dtype=float)
        style = series_style(i)
        label = str(method)
        if len(np.unique(x)) >= 2:
            slope = np.polyfit(np.log(x), np.log(y), 1)[0]
            label += f" (slope {slope:.2f}"
            label += f"; {int(limited.sum())} limited runs excluded)" if limited.any() else ")"
        ax.loglog(x, y, ls="", alpha=0.6, label=label, color=style["color"], marker=style["marker"])
        if limited.any():
            limited_any = True
            ax.loglog(g.loc[limited, size].to_numpy(dtype=float), g.loc[limited, time].to_numpy(dtype=float), "x",
                      color=style["color"], alpha=0.8)
        if len(done):
            med = done.groupby(size)[time].median().sort_index()
            ax.loglog(med.index.to_numpy(dtype=float), med.to_numpy(), alpha=0.8, color=style["color"],
                      linestyle=style["linestyle"])
    ax.set_xlabel(_label(size, xunit))
    ax.set_ylabel(f"{time} (s)")
    ax.set_title(title or f"{time} vs {size}")
    ax.grid(alpha=0.3, which="both")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="grey", label="median per size"))
    if limited_any:
        handles.append(Line2D([], [], color="grey", marker="x", ls="", label="stopped by a limit (not fitted)"))
    ax.legend(handles=handles, fontsize=8)
    return save_figure(fig, path)


def predicted_vs_measured(predicted: Sequence[float], measured: Sequence[float], *,
                          labels: Sequence[str] | None = None, band: float = 0.10, unit: str = "s",
                          path: str | Path | None = None, title: str | None = None) -> Figure:
    """Measured against predicted latency, the identity line and a ``±band`` relative band.

    Parameters
    ----------
    predicted, measured
        Equal-length sequences (one point each).
    labels
        A label per point (annotated).
    band
        The relative band drawn around the identity (default 10%).
    unit
        Unit of both axes.
    path, title
        Save the figure there; its title.

    Returns
    -------
    matplotlib.figure.Figure
    """
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

    Parameters
    ----------
    timeline
        Rows (mappings or a DataFrame) with ``stage``, ``start``, ``end`` and optionally ``kind``, ``micro_batch``.
    path, title
        Save the figure there; its title.

    Returns
    -------
    matplotlib.figure.Figure
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


__all__ = ["LINESTYLES", "MARKERS", "UNITS", "gap_distribution", "new_figure", "objective_vs_param", "pipeline_gantt",
           "predicted_vs_measured", "save_figure", "series_style", "solve_time_vs_size"]
