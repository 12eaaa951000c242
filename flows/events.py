"""Prefect events that autoloop emits, for automations and deployment triggers to react to.

- ``autoloop.fleet.episode.landed``: one per fleet episode an ingest landed (resource ``autoloop.episode.<id>``,
  related to ``autoloop.fleet``). The ``cycle`` deployment's trigger in ``prefect.yaml`` counts them.
- ``autoloop.fleet.ingested``: one per ingest run, with its counts (landed, skipped, quarantined, not found).
- ``autoloop.model.promoted``: a version became champion (resource ``mlflow.model.<name>``), with the version,
  the one it replaced, its headline metrics and the promote run.
"""

from __future__ import annotations

from prefect.events import emit_event

from autoloop.fleet.ingest import IngestReport
from autoloop.stages import PromotionResult

EPISODE_LANDED = "autoloop.fleet.episode.landed"
INGESTED = "autoloop.fleet.ingested"
PROMOTED = "autoloop.model.promoted"
FLEET = {"prefect.resource.id": "autoloop.fleet", "prefect.resource.role": "fleet"}


def fleet_ingested(report: IngestReport) -> None:
    for episode_id in report.landed:
        emit_event(EPISODE_LANDED, resource={"prefect.resource.id": f"autoloop.episode.{episode_id}",
                                             "prefect.resource.name": episode_id}, related=[FLEET])
    emit_event(INGESTED, resource={"prefect.resource.id": "autoloop.fleet"},
               payload={"landed": len(report.landed), "skipped": len(report.skipped),
                        "quarantined": len(report.quarantined), "not_found": len(report.not_found)})


def promoted(result: PromotionResult) -> None:
    """Say that ``result`` moved the champion (nothing when it did not)."""
    if not result.promoted or result.registered is None:
        return
    version = result.registered
    emit_event(PROMOTED, resource={"prefect.resource.id": f"mlflow.model.{version.name}",
                                   "prefect.resource.name": version.name},
               payload={"version": version.version, "model_uri": version.uri,
                        "previous_champion": result.champion_before.version if result.champion_before else None,
                        "metrics": result.candidate.headline(), "promote_run_id": result.run_id})
