"""Which failed tasks run again (``flows.retries``), on the states Prefect's task engine hands the condition."""

from uuid import uuid4

import pytest
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed

from flows.parameters import ParameterError
from flows.retries import transient_only


@pytest.mark.parametrize(("error", "retried"), [
    (ConnectionRefusedError("the tracking server at http://127.0.0.1:5000 refused"), True),
    (TimeoutError("no answer"), True),
    (ParameterError("parameter suite='smokey': unknown suite"), False),
    (FileExistsError("evaluations"), False),
])
def test_only_transient_failures_are_retried(error: Exception, retried: bool, caplog: pytest.LogCaptureFixture
                                             ) -> None:
    task_run = TaskRun(name="connect-1", flow_run_id=uuid4(), task_key="connect", dynamic_key="1")
    assert transient_only(None, task_run, Failed(data=error)) is retried
    if not retried:  # the log says why
        assert f"connect-1 is not retried: {type(error).__name__}" in caplog.text
