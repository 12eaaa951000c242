"""Which failed tasks run again: transient failures, with exponential backoff; deterministic ones never.

A tracking server or Ray head that does not answer, a connection that dropped, a Ray worker that died: these may go
away, so the task runs again after 5, 10 and 20 s (:func:`autoloop.network.is_transient` decides). A bad parameter,
a broken fleet log or a failing gate would fail the same way again: the task fails at once and its log says why it
was not retried.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.client.schemas.objects import State, TaskRun
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from autoloop.network import is_transient

#: Attempts after the first, and the wait before each (s).
RETRIES = 3
RETRY_DELAYS_S = exponential_backoff(backoff_factor=5)(RETRIES)


def transient_only(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """A task's ``retry_condition_fn``: retry only what :func:`autoloop.network.is_transient` calls transient."""
    error = state.data if isinstance(state.data, BaseException) else None
    log = _logger()
    if error is not None and is_transient(error):
        log.warning("%s failed with a transient error, retrying: %s", task_run.name, error)
        return True
    log.error("%s is not retried: %s is not transient (a retry would fail the same way)", task_run.name,
              f"{type(error).__name__}: {error}" if error is not None else "its failure")
    return False


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


#: The retry options of a task that talks to servers (tracking, registry, Ray): transient failures only.
RETRYING: dict[str, Any] = {"retries": RETRIES, "retry_delay_seconds": RETRY_DELAYS_S,
                            "retry_condition_fn": transient_only}
