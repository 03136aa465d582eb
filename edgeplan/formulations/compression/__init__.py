"""Caesar's compression ratios and batch sizes for federated learning.

* :class:`CompressionRound` / :class:`CompressionChoice` / :class:`CompressionMetrics`: each device's download
  level, upload level and batch size in one round (:mod:`.round`);
* :class:`UploadRatios` / :class:`RatioPlan` / :class:`RatioMetrics`: continuous upload ratios under a deviation
  budget (:mod:`.ratios`);
* :class:`BatchSizing` / :class:`BatchPlan` / :class:`BatchMetrics`: batch sizes that meet at the barrier
  (:mod:`.batch`);
* the codecs' byte counts and the top-k error profile (:mod:`.wire`).

Seeded instances in :mod:`.instances` (``"caesar-round"``, ``"upload-ratios"``, ``"batch-sizing"``).
"""

from edgeplan.formulations.compression.batch import BatchMetrics, BatchPlan, BatchSizing
from edgeplan.formulations.compression.ratios import RatioMetrics, RatioPlan, UploadRatios
from edgeplan.formulations.compression.round import CompressionChoice, CompressionMetrics, CompressionRound

__all__ = ["BatchMetrics", "BatchPlan", "BatchSizing", "CompressionChoice", "CompressionMetrics",
           "CompressionRound", "RatioMetrics", "RatioPlan", "UploadRatios"]
