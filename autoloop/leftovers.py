"""What a killed process leaves in a home, found and cleared when the next stage starts.

- **Hidden temporaries**: every writer stages its files as ``.<name>.<pid>[.<suffix>].tmp`` beside the final one
  (episodes, maps, snapshots, the ledger, checkpoints) and renames them into place; a write killed in between
  leaves one. An entry whose writer is gone (its pid not running, or running since after the entry was last
  written: a reused pid) is removed; so is ``.<name>.<pid>.<suffix>.deleted``, an episode deletion killed midway.
- **Runs**: every run autoloop starts carries ``autoloop.process`` (host, pid and the process's start time). A run
  still RUNNING whose process on this host is gone is marked KILLED; the models logged in it and still PENDING are
  marked FAILED; a training run's checkpoint folder without its model is removed; and a registered version whose
  verdict is still ``pending`` after its promotion run ended gets the verdict ``failed`` with that reason.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, RunStatus
from mlflow.exceptions import MlflowException

from autoloop.paths import Paths
from autoloop.proc import gone, running, started_at_s
from autoloop.tracking import PROCESS_TAG

log = logging.getLogger(__name__)

_TEMPORARY = re.compile(r"^\..+?\.(?P<pid>\d+)(\.[0-9a-f]{8}|\.\d+)?\.(tmp(-journal|-wal|-shm)?|deleted)$")
#: Folders of a home not searched for temporaries (MLflow's own artifacts).
_NOT_SEARCHED = ("mlartifacts",)


@dataclass
class Cleared:
    """What :func:`clear` removed or marked."""

    temporaries: list[Path] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


def clear(paths: Paths, experiment_id: str, model_name: str) -> Cleared:
    """Clear what killed processes left in ``paths``' home and tracking store (see the module)."""
    cleared = Cleared(temporaries=stale_temporaries(paths.home))
    for path in cleared.temporaries:
        log.info("removing %s, left by a write that was killed", path)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    client = MlflowClient()
    cleared.runs = _close_dead_runs(client, experiment_id)
    cleared.models = _fail_pending_models(client, experiment_id)
    for run_id in cleared.runs:
        folder = paths.checkpoints / run_id
        if folder.is_dir() and not (paths.checkpoints / f"{run_id}.pt").exists():
            shutil.rmtree(folder, ignore_errors=True)
            cleared.checkpoints.append(folder)
    cleared.versions = _fail_pending_verdicts(client, model_name)
    return cleared


def stale_temporaries(home: Path) -> list[Path]:
    """The hidden temporaries under ``home`` whose writer is gone."""
    found = []
    for folder, names, files in os.walk(home):
        if Path(folder) == home:
            names[:] = [name for name in names if name not in _NOT_SEARCHED]
        for name in [*names, *files]:
            match = _TEMPORARY.match(name)
            if match is None:
                continue
            path = Path(folder) / name
            if _writer_gone(int(match["pid"]), path):
                found.append(path)
        names[:] = [name for name in names if not _TEMPORARY.match(name)]  # (removed whole)
    return sorted(found)


def _writer_gone(pid: int, path: Path) -> bool:
    if not running(pid):
        return True
    started = started_at_s(pid)
    try:
        written = path.lstat().st_mtime
    except OSError:
        return False
    return started is not None and started > written + 1.0  # the pid was reused by a process started since


def _close_dead_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        if gone(run.data.tags.get(PROCESS_TAG, "")):
            log.warning("run %s (%s) was left RUNNING by a process that is gone: marked KILLED", run.info.run_id,
                        run.data.tags.get("autoloop.stage", "?"))
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            closed.append(str(run.info.run_id))
    return closed


def _fail_pending_models(client: MlflowClient, experiment_id: str) -> list[str]:
    failed = []
    for model in client.search_logged_models([experiment_id], max_results=1000):
        if model.status != LoggedModelStatus.PENDING:
            continue
        run_id = model.source_run_id
        status = client.get_run(run_id).info.status if run_id else None
        if status is not None and status != "RUNNING":
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            failed.append(str(model.model_id))
    return failed


def _fail_pending_verdicts(client: MlflowClient, model_name: str) -> list[str]:
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    failed = []
    for version in versions:
        run_id = version.tags.get("promote_run_id")
        if version.tags.get("verdict") != "pending" or not run_id:
            continue
        try:
            status = client.get_run(run_id).info.status
        except MlflowException:
            status = "DELETED"
        if status != "RUNNING":
            client.set_model_version_tag(model_name, str(version.version), "verdict", "failed")
            client.set_model_version_tag(model_name, str(version.version), "reasons",
                                         f"the promotion stopped before its verdict (run {run_id} {status.lower()})")
            failed.append(str(version.version))
    return failed
