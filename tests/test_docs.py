"""The documentation site: it builds strictly, its code runs, its outputs are real, its CLI page is current.

Every ```` ```python ```` block of a page under ``docs/`` runs (in a fresh namespace, as ``__main__``); a
```` ```text ```` block right after one is its expected output and must equal what the code prints. Blocks
fenced ```` ```py ```` are excerpts of larger code that is tested whole elsewhere (the architecture page's
new-family example: ``tests/contract/new_family``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
BLOCK = re.compile(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```)?", re.S)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs is not installed (the `docs` extra)"
    run = subprocess.run([mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "runtimes" / "index.html").exists()


def test_the_cli_page_is_what_the_parser_says() -> None:
    from edgeplan.cli.reference import cli_reference

    assert (DOCS / "cli.md").read_text() == cli_reference(), "regenerate: python -m edgeplan.cli.reference docs/cli.md"


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search((DOCS / p).read_text())])
def test_every_code_block_of_a_page_runs_and_prints_what_the_page_shows(page: str) -> None:
    for i, (code, shown) in enumerate(BLOCK.findall((DOCS / page).read_text())):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{page}[{i}]", "exec"), {"__name__": "__main__"})
        if shown:
            assert out.getvalue().strip() == shown.strip(), f"{page} block {i} prints something else"


def test_nothing_users_get_points_outside_the_repository() -> None:
    texts = [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "edgeplan").rglob("*.py")]
    bad = [str(p.relative_to(ROOT)) for p in texts if "../shared" in p.read_text()]
    assert not bad


def test_public_names_have_docstrings() -> None:
    import importlib
    import inspect
    import pkgutil

    import edgeplan

    missing = []
    for info in pkgutil.walk_packages(edgeplan.__path__, prefix="edgeplan."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        assert (inspect.getdoc(mod) or "").strip(), f"module {info.name} has no docstring"
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == info.name:
                if not (inspect.getdoc(obj) or "").strip():
                    missing.append(f"{info.name}.{name}")
    assert not missing


def test_the_package_face_and_the_family_exports_have_sections() -> None:
    import enum
    import inspect

    import edgeplan
    from edgeplan.registry import public_name, public_names

    names = {n: getattr(edgeplan, n) for n in edgeplan.__all__}
    names |= {n: public_name(n) for n in public_names() if n != "MILP"}
    bare = []
    for n, obj in sorted(names.items()):
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException | enum.Enum):  # members documented inline
            continue
        doc = inspect.getdoc(obj) or ""
        if "Parameters\n---" not in doc and "Attributes\n---" not in doc:
            bare.append(n)
    assert not bare


def test_every_object_of_the_api_reference_has_sections() -> None:
    import enum
    import importlib
    import inspect

    bare = []
    for page in sorted((DOCS / "api").glob("*.md")):
        for target in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M):
            module, _, name = target.rpartition(".")
            obj = getattr(importlib.import_module(module), name)
            if inspect.ismodule(obj):  # a whole module (the errors: classes documented one by one)
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException | enum.Enum):  # members documented inline
                continue
            doc = inspect.getdoc(obj) or ""
            takes = not inspect.isfunction(obj) or bool(inspect.signature(obj).parameters)
            if takes and "Parameters\n---" not in doc and "Attributes\n---" not in doc:
                bare.append(target)
    assert not bare


def test_the_user_facing_functions_document_their_parameters_in_numpydoc_sections() -> None:
    import inspect

    import edgeplan as ep
    from edgeplan.experiments import fl_rounds, flower_run, plot
    from edgeplan.io import flower_strategy
    from edgeplan.io.export import flower, onnx, split_spec
    from edgeplan.validation.fl.execute import validate_fl_round
    from edgeplan.validation.partition.execute import validate_split
    from edgeplan.validation.partition.pipelining import run_torch_pipelining

    for func in (ep.solve, ep.compare, ep.read_results, ep.available_methods, ep.save_plan, ep.load_plan,
                 ep.export_plan, ep.load_scenario, fl_rounds.simulate_fl, fl_rounds.compare_simulations,
                 fl_rounds.plot_accuracy, fl_rounds.plot_wall_clock, flower_run.run_flower, plot.objective_vs_param,
                 plot.gap_distribution, plot.solve_time_vs_size, plot.predicted_vs_measured, plot.pipeline_gantt,
                 flower.flower_round_config, flower_strategy.load_round_configs, onnx.export_onnx_stages,
                 onnx.run_onnx_stages, split_spec.split_spec, split_spec.load_split_spec,
                 split_spec.pipelining_split_spec, validate_fl_round, validate_split, run_torch_pipelining):
        doc = inspect.getdoc(func) or ""
        assert "Parameters\n----------" in doc, func.__name__
        section = doc.split("Parameters\n----------", 1)[1]
        for p in inspect.signature(func).parameters:
            assert re.search(rf"^[\w, *]*\b{p}\b", section, re.M), (func.__name__, p)
