"""The shape of the package: floors import only the floors below, families stay apart, no import cycles."""

from __future__ import annotations

import grimp
import networkx as nx
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

from edgeplan.registry import FAMILIES, FLOORS, family_packages


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


def test_every_family_contract_lists_every_family() -> None:
    """A new family in FAMILIES must be added to the independence contracts (they are written out in toml)."""
    import tomllib

    conf = tomllib.loads(open("pyproject.toml").read())["tool"]["importlinter"]["contracts"]
    independent = {c["name"]: set(c["modules"]) for c in conf if c["type"] == "independence"}
    for floor in ("formulations", "solvers", "validation"):
        expected = set(family_packages(floor))
        assert independent[f"{floor}: families independent"] == expected, floor
    assert set(FLOORS) >= {"formulations", "solvers", "validation"} and FAMILIES
