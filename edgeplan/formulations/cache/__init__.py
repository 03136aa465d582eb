"""CoCa cache placement: which cache layers each client activates and how many hot-spot classes it caches.

* :class:`CachePlacement`: the separable hit model (expected latency and accuracy from hit tables);
* :class:`CacheReplay`: the same decision scored on a recorded request stream;
* :class:`CachePlan` / :class:`CacheMetrics`: the plan and its metrics (:mod:`.plan`).

Seeded instances in :mod:`.instances` (``"cache"``, ``"cache-replay"``).
"""

from edgeplan.formulations.cache.placement import CachePlacement
from edgeplan.formulations.cache.plan import CacheMetrics, CachePlan
from edgeplan.formulations.cache.replay import CacheReplay

__all__ = ["CacheMetrics", "CachePlacement", "CachePlan", "CacheReplay"]
