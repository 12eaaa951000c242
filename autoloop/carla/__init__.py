"""autoloop in CARLA: CARLA servers and the CARLA Leaderboard's evaluator as processes autoloop owns (started,
watched, killed, restarted, retried and resumed: :func:`run_leaderboard`), and the Leaderboard agent that drives
autoloop's drivers there (``leaderboard_agent``, doing :class:`~autoloop.carla.driving.CarlaDriving`'s work, set up
by ``agent_config``).

Nothing here imports the ``carla`` package (only ``sim/carla`` does): servers are programs with ports, the
evaluator is a program with a command line and a checkpoint file, and the agent reads the world through
``sim.carla``.
"""

from autoloop.carla.evaluator import (
    EvaluatorSettings,
    evaluator_command,
    evaluator_environment,
    leaderboard_evaluator_prefix,
    route_ids_in,
)
from autoloop.carla.leaderboard_runner import LeaderboardRunResult, RunInterrupted, WatchSettings, run_leaderboard
from autoloop.carla.runner_state import CrashedRoute
from autoloop.carla.servers import (
    PORTS_PER_SERVER,
    CarlaServer,
    ExternalCarlaServer,
    LocalCarlaServer,
    ServerError,
    ServerPorts,
    carla_launch_command,
    local_servers,
    server_ports,
)

__all__ = [
    "PORTS_PER_SERVER",
    "CarlaServer",
    "CrashedRoute",
    "EvaluatorSettings",
    "ExternalCarlaServer",
    "LeaderboardRunResult",
    "LocalCarlaServer",
    "RunInterrupted",
    "ServerError",
    "ServerPorts",
    "WatchSettings",
    "carla_launch_command",
    "evaluator_command",
    "evaluator_environment",
    "leaderboard_evaluator_prefix",
    "local_servers",
    "route_ids_in",
    "run_leaderboard",
    "server_ports",
]
