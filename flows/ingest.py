"""The fleet ingest flow: real driving logs into the episode store, bad ones into quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from autoloop.episodes import EpisodeStore
from autoloop.fleet import ingest
from autoloop.paths import Paths


@flow(name="ingest")
def ingest_flow(paths: list[str], home: str | None = None) -> dict[str, Any]:
    """Import every AV2 log under ``paths`` (``autoloop ingest`` as a flow, for deployments that watch a drop
    folder): the ids that landed or were already there, and each quarantined log with its reason."""
    where = Paths(Path(home).resolve()) if home else Paths.from_env()
    report = ingest([Path(p) for p in paths], EpisodeStore(where.episodes), where.quarantine)
    lines = [f"- `{q.log.name}`: {q.file} — `{q.field}`: {q.problem}" for q in report.quarantined]
    create_markdown_artifact(
        key="ingest-summary",
        markdown=f"# ingest\n\n{len(report.landed)} landed, {len(report.skipped)} already ingested, "
                 f"{len(report.quarantined)} quarantined\n\n" + "\n".join(lines))
    return {"landed": report.landed, "skipped": report.skipped,
            "quarantined": [{"log": str(q.log), "folder": str(q.folder), "file": q.file, "field": q.field,
                             "problem": q.problem} for q in report.quarantined],
            "not_found": [str(p) for p in report.not_found]}
