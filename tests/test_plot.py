"""Every plot function writes a real PNG and SVG (Agg, via matplotlib's object API)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import edgeplan as ep
from edgeplan import ProblemDataError, plot
from edgeplan.io.scenarios import Scenario


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    scen = Scenario("p", "knapsack", {"n_rows": 2}, {"n_items": [5, 10, 20]}, (0, 1))
    return ep.compare(scen, ["highs", "cp-sat"], time_limit=5)


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_compare_plots(table: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    files = [tmp_path / f"obj{suffix}", tmp_path / f"gap{suffix}", tmp_path / f"time{suffix}"]
    plot.objective_vs_param(table, "n_items", path=files[0])
    plot.gap_distribution(table, path=files[1])
    fig = plot.solve_time_vs_size(table, "n_items", path=files[2])
    assert "slope" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    for f in files:
        assert _is_png(f) if suffix == ".png" else f.read_text().lstrip().startswith("<?xml")


def test_predicted_vs_measured_counts_the_band(tmp_path: Path) -> None:
    fig = plot.predicted_vs_measured([1.0, 2.0, 3.0], [1.05, 2.5, 2.9], labels=["a", "b", "c"],
                                     path=tmp_path / "pm.png")
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "within band (2/3)" in legend and _is_png(tmp_path / "pm.png")
    with pytest.raises(ProblemDataError, match=r"`predicted` has shape \(2,\) and `measured` \(1,\)"):
        plot.predicted_vs_measured([1, 2], [1])


def test_pipeline_gantt_shades_bubbles(tmp_path: Path) -> None:
    tl = [{"stage": "dev0", "start": 0.0, "end": 1.0, "kind": "fwd", "micro_batch": 0},
          {"stage": "dev0", "start": 2.0, "end": 3.0, "kind": "fwd", "micro_batch": 1},
          {"stage": "dev1", "start": 1.0, "end": 2.5, "kind": "fwd", "micro_batch": 0}]
    fig = plot.pipeline_gantt(tl, path=tmp_path / "g.svg")
    # dev0 idles 1 s between its tasks; dev1 idles 1 s before and 0.5 s after: 2.5 s in all.
    assert "bubbles 2.5 s" in fig.axes[0].get_title()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["fwd", "bubble (idle)"]
    with pytest.raises(ProblemDataError, match=r"`timeline`\[0\] = .*expected stage, start <= end"):
        plot.pipeline_gantt([{"stage": 0, "start": 2, "end": 1}])


def test_bad_inputs(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ProblemDataError, match=r"`df` lacks columns \['n_users'\]"):
        plot.objective_vs_param(table, "n_users")
    with pytest.raises(ProblemDataError, match=r"`path` = '.*x.bmp'; expected a file ending in .png, .svg, .pdf"):
        plot.gap_distribution(table, path=tmp_path / "x.bmp")
