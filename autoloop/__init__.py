"""autoloop: an open data engine for driving policies.

Importing the package switches MLflow's and Prefect's telemetry off, gives Prefect's ephemeral API server time to
start on small machines and sends autoloop's log lines to the Prefect run they belong to, unless the environment
already says otherwise.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

_RUNTIME_DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # autoloop's own log lines reach the Prefect UI: the run logger's handler is attached to these loggers too
    "PREFECT_LOGGING_EXTRA_LOGGERS": "autoloop",
    # and outside any flow run (a stage run from the CLI, a library call) they go to the console only, unwarned
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
for _key, _value in _RUNTIME_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
