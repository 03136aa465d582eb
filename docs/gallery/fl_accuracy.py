"""The README's FedAvg figure: test accuracy against cumulative wall-clock, six round planners, trained for real.

Run from the repository root: ``python docs/gallery/fl_accuracy.py`` (a few minutes on 2 cores); writes
``docs/fl-accuracy.png``. 50 rounds, 100 mobile users at 20 m/s, K = 20 selected per round, 30..90 samples each,
one local epoch of the FMNIST CNN on synthetic non-IID data (nothing is downloaded).
"""

from pathlib import Path

from edgeplan.experiments.fl_rounds import compare_simulations, plot_accuracy

METHODS = ["fl-bisect", "dagsa", "dagsa-static", "fastest-compute", "best-channel", "random"]

if __name__ == "__main__":
    sims = compare_simulations(METHODS, n_rounds=50, n_users=100, n_select=20, samples=(30, 90), local_epochs=1,
                               seed=0, train=True)
    for name, sim in sims.items():
        print(f"{name:>16}: 80% test accuracy after {sim.time_to_accuracy(0.8):.2f} s of wall-clock")
    print(plot_accuracy(sims, Path(__file__).resolve().parents[1] / "fl-accuracy.png") and "wrote docs/fl-accuracy.png")
