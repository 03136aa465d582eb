"""SLIDE: layer-wise model download while inferring, per-layer DVFS, bandwidth shares and user admission.

:class:`SlideProvisioning` / :class:`SlidePlan`; seeded instances in :mod:`.instances` (``"slide"``).
"""

from edgeplan.formulations.slide.provisioning import SlideMetrics, SlidePlan, SlideProvisioning

__all__ = ["SlideMetrics", "SlidePlan", "SlideProvisioning"]
