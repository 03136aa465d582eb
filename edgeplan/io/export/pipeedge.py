"""The ``pipeedge`` export of pipeline plans: PipeEdge's YAML files and the plan as its ``schedule.yml``
(:mod:`edgeplan.formulations.partition.pipeedge` reads and writes the formats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.registry import exporter


@exporter("pipeedge", plan=PipelinePlan)
def export_pipeedge(problem: PipelinePartition, plan: PipelinePlan, out_dir: Path, *, hosts: Any = None,
                    **_: Any) -> list[Path]:
    """PipeEdge's models/device_types/devices YAML and the plan as its schedule.yml."""
    import yaml

    from edgeplan.formulations.partition.pipeedge import device_hosts, schedule_yaml, write_pipeedge

    paths = write_pipeedge(problem, out_dir, hosts=hosts)
    host_of = device_hosts(problem, hosts)
    p = out_dir / "schedule.yml"
    p.write_text(yaml.safe_dump(schedule_yaml(plan, host_of), sort_keys=False))
    return [*paths, p]


__all__ = ["export_pipeedge"]
