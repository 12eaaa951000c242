"""``run_leaderboard`` in a process of its own, so that tests can SIGKILL or SIGTERM the runner itself.

    runner.py SPEC.json

SPEC: ``{"routes", "agent", "output_dir", "server_commands": [[...]], "rpc_ports": [...], "evaluator_prefix": [...],
"chunk_routes", "hang_timeout_s", "poll_s", "stop_grace_s"}``. Prints the result as JSON on its last line.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from autoloop.carla import EvaluatorSettings, LocalCarlaServer, ServerPorts, WatchSettings, run_leaderboard


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    spec = json.loads(Path(sys.argv[1]).read_text())
    output = Path(spec["output_dir"])
    servers = [LocalCarlaServer(command, ports=ServerPorts(port), log_path=output / "logs" / f"server-{i}.log",
                                stop_grace_s=spec["stop_grace_s"])
               for i, (command, port) in enumerate(zip(spec["server_commands"], spec["rpc_ports"], strict=True))]
    result = run_leaderboard(
        EvaluatorSettings(routes=Path(spec["routes"]), agent=Path(spec["agent"])), servers=servers,
        output_dir=output, evaluator_prefix=spec["evaluator_prefix"], chunk_routes=spec["chunk_routes"],
        watch=WatchSettings(hang_timeout_s=spec["hang_timeout_s"], poll_s=spec["poll_s"],
                            stop_grace_s=spec["stop_grace_s"], server_ready_timeout_s=10.0))
    print(json.dumps({"checkpoints": [str(path) for path in result.checkpoints],
                      "crashed": [route.route_id for route in result.crashed]}))


if __name__ == "__main__":
    main()
