"""Published heuristics and baselines, one module per method, named after it."""
from edgeplan.solvers.heuristics import aca as _aca  # noqa: F401  (registers "aca")
from edgeplan.solvers.heuristics import cache_baselines as _cache_baselines  # noqa: F401  (no-cache, ...)
from edgeplan.solvers.heuristics import dagsa as _dagsa  # noqa: F401  (registers "dagsa", "dagsa-static")
from edgeplan.solvers.heuristics import dai as _dai  # noqa: F401  (registers "dai")
from edgeplan.solvers.heuristics import eba as _eba  # noqa: F401  (registers "eba")
from edgeplan.solvers.heuristics import eecra as _eecra  # noqa: F401  (registers "eecra")
from edgeplan.solvers.heuristics import fl_baselines as _fl_baselines  # noqa: F401  (random, best-channel, ...)
from edgeplan.solvers.heuristics import gbmp as _gbmp  # noqa: F401  (registers "gbmp")
