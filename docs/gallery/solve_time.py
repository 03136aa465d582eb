"""The README's solve-time figure: the shipped knapsack sweep solved by four exact MILP methods (2 s limit).

Run from the repository root: ``python docs/gallery/solve_time.py`` (about a minute); writes
``docs/solve-time.png``. Runs stopped by the time limit are drawn as crosses and left out of the fitted slopes.
"""

from pathlib import Path

import edgeplan as ep

if __name__ == "__main__":
    df = ep.compare("knapsack-sweep", ["highs", "cp-sat", "scipy", "pyomo"], time_limit=2,
                    sweep={"n_items": [10, 20, 40, 80]})
    print(df.groupby("method")[["solve_time"]].median())
    ep.plot.solve_time_vs_size(df, "n_items", path=Path(__file__).resolve().parents[1] / "solve-time.png",
                               title="knapsack sweep: solve time vs items (2 s limit)", xunit="items")
    print("wrote docs/solve-time.png")
