"""Run every ``benchmarks/bench_*.py`` (``make bench``); not part of CI's test run.

Each benchmark is a script with ``main(argv)`` that prints its figures and targets.
``python benchmarks/run.py milp`` runs only those whose name contains ``milp``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    wanted = sys.argv[1:]
    for path in sorted(here.glob("bench_*.py")):
        if wanted and not any(w in path.stem for w in wanted):
            continue
        print(f"\n=== {path.stem} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        module.main([])
        print(f"({path.stem}: {time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
