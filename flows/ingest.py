"""The fleet ingest flow: real driving logs into the episode store, bad ones into quarantine.

Every episode that lands is announced as a Prefect event (:mod:`flows.events`); the ``cycle`` deployment's trigger
counts them and starts a cycle once enough new fleet data is there.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from autoloop.episodes import EpisodeStore
from autoloop.fleet import ingest
from flows import events, parameters
from flows.stages import run_name


@flow(name="ingest", flow_run_name=run_name("ingest", "paths"))
def ingest_flow(paths: list[str], home: str | None = None) -> dict[str, Any]:
    """Import the Argoverse 2 logs under `paths` (sensor logs or motion-forecasting scenarios, or folders holding
    several) into the episode store; a log that fails validation goes to quarantine with its reason.

    Args:
        paths: Log folders on the worker, or folders holding several (a drop folder).
        home: autoloop home on the worker (default $AUTOLOOP_HOME); a folder every worker sees.
    """
    if not paths:
        raise parameters.ParameterError("parameter paths=[]: give at least one folder to ingest")
    where = parameters.home(home)
    report = ingest([parameters.existing(p, name="paths", folder=True) for p in paths], EpisodeStore(where.episodes),
                    where.quarantine)
    events.fleet_ingested(report)
    lines = [f"- `{q.log.name}`: {q.file} — `{q.field}`: {q.problem}" for q in report.quarantined]
    create_markdown_artifact(
        key="ingest-summary",
        markdown=f"# ingest\n\n{len(report.landed)} landed, {len(report.skipped)} already ingested, "
                 f"{len(report.quarantined)} quarantined\n\n" + "\n".join(lines))
    return {"landed": report.landed, "skipped": report.skipped,
            "quarantined": [{"log": str(q.log), "folder": str(q.folder), "file": q.file, "field": q.field,
                             "problem": q.problem} for q in report.quarantined],
            "not_found": [str(p) for p in report.not_found]}
