"""FL rounds: user selection, base-station assignment, bandwidth (and, for energy, CPU clock and power).

* :class:`FLRound` / :class:`FLSchedule`: the min-max round latency of DAGSA-style scheduling with mobility
  (coverage windows), per-BS bandwidth or resource blocks, and a selection quota;
* :class:`FLRoundEnergy` / :class:`FLEnergySchedule`: the least-energy round of HFL-SNM under a deadline
  (DVFS clock, transmit power, time split), with data-coverage requirements.

The MILPs are in :mod:`.milp`, seeded instances in :mod:`.instances` (``"fl-round"``, ``"fl-energy"``).
"""

from edgeplan.formulations.fl.fl_energy import FLEnergyMetrics, FLEnergySchedule, FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound, FLRoundMetrics, FLSchedule

__all__ = ["FLEnergyMetrics", "FLEnergySchedule", "FLRound", "FLRoundEnergy", "FLRoundMetrics", "FLSchedule"]
