"""The shape of the package: floors import only the floors below, families stay apart, no import cycles."""

from __future__ import annotations

import grimp
import networkx as nx
import pytest
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

from edgeplan.registry import family_packages


def test_floor_and_family_contracts_hold() -> None:
    # the contracts are in pyproject.toml ([tool.importlinter]); lint-imports prints what breaks
    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == EXIT_STATUS_SUCCESS


def test_no_import_cycle_inside_edgeplan() -> None:
    graph = grimp.build_graph("edgeplan", exclude_type_checking_imports=True)
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_node(m)
        for target in graph.find_modules_directly_imported_by(m):
            # a package's __init__ importing its own submodules is not a cycle of the code
            if not target.startswith(m + "."):
                g.add_edge(m, target)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert cycles == []


@pytest.mark.parametrize("floor", ["formulations", "solvers", "validation"])
def test_families_are_independent_on_every_floor(floor: str) -> None:
    """No family folder imports another family's folder on the same floor (directly or through a chain)."""
    graph = grimp.build_graph("edgeplan", exclude_type_checking_imports=True)
    packages = family_packages(floor)
    assert len(packages) >= 2
    crossings = [(a, b) for a in packages for b in packages
                 if a != b and graph.chain_exists(importer=a, imported=b, as_packages=True)]
    assert crossings == []
