"""Runs a killed process left in the tracking store.

Every run autoloop starts carries ``autoloop.process`` (:data:`autoloop.tracking.PROCESS_TAG`: host, pid and the
process's start time). A run still RUNNING whose process on this host is gone is marked KILLED; the models logged
in it and still PENDING are marked FAILED; and a registered version whose verdict is still ``pending`` after its
promotion run ended gets the verdict ``failed`` with that reason. Runs of other hosts are left to them.
"""

from __future__ import annotations

import logging

from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, RunStatus
from mlflow.exceptions import MlflowException

from autoloop.proc import gone

log = logging.getLogger(__name__)

#: The run tag naming the process that runs it (:func:`autoloop.proc.identity`).
PROCESS_TAG = "autoloop.process"


def clear_dead_runs(experiment_id: str, model_name: str) -> tuple[list[str], list[str], list[str]]:
    """Close what dead processes left: the runs marked KILLED, the logged models marked FAILED, the versions whose
    pending verdict became ``failed`` (their ids)."""
    client = MlflowClient()
    return (_close_dead_runs(client, experiment_id), _fail_pending_models(client, experiment_id),
            _fail_pending_verdicts(client, model_name))


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
