"""autoloop's CARLA Leaderboard 2.x agent: give this file to the evaluator's ``--agent`` and a driver to its
``--agent-config`` (:mod:`autoloop.carla.agent_config`: ``expert``, ``models:/autoloop-driver@champion``, a
checkpoint file, or the JSON file ``autoloop evaluate --backend carla`` writes).

The Leaderboard is not part of autoloop: its ``AutonomousAgent`` (``leaderboard/autoagents/autonomous_agent.py``)
and the scenario runner's ``CarlaDataProvider`` come from ``$LEADERBOARD_ROOT`` and ``$SCENARIO_RUNNER_ROOT`` on
``PYTHONPATH``, as the Leaderboard's documentation sets them up.

This is a **privileged-input** agent: it reads the ground truth of the world (every actor, the traffic lights'
states, the Traffic Manager's plans) through the scenario runner's data provider, as privileged experts and
object-level planners do, and asks for one sensor only (the speedometer, which every track allows). It is not
eligible for the official SENSORS track; use it to score autoloop's drivers against CARLA's own scenarios and
criteria. The driving itself is :class:`autoloop.carla.driving.CarlaDriving`.
"""

from __future__ import annotations

from typing import Any

try:
    from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
    from srunner.scenariomanager.carla_data_provider import CarlaDataProvider
except ImportError as error:  # pragma: no cover - needs the Leaderboard
    raise ImportError(
        "autoloop's Leaderboard agent runs inside the CARLA Leaderboard's evaluator: put $LEADERBOARD_ROOT and "
        "$SCENARIO_RUNNER_ROOT (and $CARLA_ROOT/PythonAPI/carla) on PYTHONPATH, or run `autoloop evaluate "
        f"--backend carla` ({error})") from error

from autoloop.carla.agent_config import AgentConfig
from autoloop.carla.driving import CarlaDriving
from sim.carla.control import max_steer_angle_deg
from sim.carla.world_reader import WorldReader, town_lane_graph


def get_entry_point() -> str:
    """The agent's class name, as the evaluator asks for it."""
    return "AutoloopAgent"


class AutoloopAgent(AutonomousAgent):  # type: ignore[misc]
    """One route of the evaluator: the driver ``--agent-config`` names, on the world it runs."""

    def setup(self, path_to_conf_file: str) -> None:
        """Read the agent config (a bad one fails here: the evaluator records ``Agent couldn't be set up``)."""
        self.track = Track.SENSORS
        self.settings = AgentConfig.read(path_to_conf_file)
        self._driving: CarlaDriving | None = None
        self._reader: WorldReader | None = None
        self._steer_deg = 0.0
        self._start_s: float | None = None

    def sensors(self) -> list[dict[str, Any]]:
        """The speedometer only: the agent reads the world itself (see the module's documentation)."""
        return [{"type": "sensor.speedometer", "reading_frequency": 20, "id": "speed"}]

    def set_global_plan(self, global_plan_gps: list[Any], global_plan_world_coord: list[Any]) -> None:
        """Keep the whole plan (the base class keeps a downsampled one)."""
        super().set_global_plan(global_plan_gps, global_plan_world_coord)
        self._plan = list(global_plan_world_coord)

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        """The control for this tick (``carla.VehicleControl``)."""
        if self._driving is None:
            self._begin()
        assert self._driving is not None and self._reader is not None
        if self._start_s is None:
            self._start_s = float(timestamp)
        return self._driving.step(self._reader.snapshot(float(timestamp) - self._start_s),
                                  max_steer_angle_deg=self._steer_deg)

    def _begin(self) -> None:
        world = CarlaDataProvider.get_world()
        hero = CarlaDataProvider.get_hero_actor()
        client = CarlaDataProvider.get_client()
        traffic_manager = client.get_trafficmanager(CarlaDataProvider.get_traffic_manager_port())
        lane_graph = town_lane_graph(world.get_map())
        self._driving = CarlaDriving.from_config(self.settings, lane_graph)
        self._driving.start(self._plan)
        self._reader = WorldReader(world, hero, traffic_manager)
        self._steer_deg = max_steer_angle_deg(hero.get_physics_control())

    def destroy(self) -> None:
        """Keep the route's episode."""
        if self._driving is not None:
            self._driving.finish()
            self._driving = None
        super().destroy()
