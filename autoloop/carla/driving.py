"""Driving in CARLA, as autoloop's Leaderboard agent does it, without the Leaderboard: the route from the global
plan, the scene each tick, the driver's action as a ``carla.VehicleControl``, and the route kept as an episode.

:class:`CarlaDriving` is the agent's whole work; :mod:`autoloop.carla.leaderboard_agent` only hands it what the
evaluator gives (the plan, the world, each tick). Each tick the scene is read from the world
(:class:`sim.carla.scene.CarlaScene`: ground truth, lights, the scene's own readers), the driver sees the same
observation as in the embedded simulator (:class:`~sim.scene.observation.Observer`; the privileged expert reads
the scene instead), and its ``[steer, accel]`` becomes the vehicle's control
(:func:`sim.carla.control.vehicle_control`).
The route's episode (source ``carla``: the ego's states and actions, everyone around, the infractions the scene
counted, the lights' states, the route's Leaderboard record as the scene scored it) goes to the episode store with
its town's lane graph, so the replay viewer shows it like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.carla.agent_config import AgentConfig
from autoloop.config import SimConfig
from autoloop.episodes import Episode, EpisodeStore, new_episode_id
from autoloop.rollout.drivers import WorldDriver
from autoloop.rollout.episodes import actor_snapshot, actor_table, events_table, scene_columns
from policies.base import Policy
from sim.carla.control import vehicle_control
from sim.carla.plan import plan_route
from sim.carla.scene import CarlaScene, Snapshot
from sim.maps import LaneGraph
from sim.metrics import Infraction, score_route
from sim.scenarios.model import route_timeout_s
from sim.scene import outcome
from sim.scene.observation import Observer, observation_space
from sim.scene.outcome import Event

_INFRACTIONS = frozenset(kind.value for kind in Infraction)


class CarlaDriving:
    """One driver on one CARLA ego, route after route.

    :param policy: the driver (built for :attr:`scene`: the expert reads it; a learned driver sees observations).
    :param policy_name: stored with each episode (the driver spec).
    :param lane_graph: the town's lane graph (:func:`sim.carla.world_reader.town_lane_graph`).
    :param sim: the simulator settings the driver was trained with (BEV, the ego's vehicle model).
    :param store: where each route's episode goes (``None``: nowhere).
    :param tags: stored with each episode.
    """

    def __init__(self, policy: Any, *, policy_name: str, lane_graph: LaneGraph, sim: SimConfig,
                 store: EpisodeStore | None = None, tags: dict[str, str] | None = None, scene: CarlaScene) -> None:
        self.policy: Policy = policy
        self.policy_name = policy_name
        self.map = lane_graph
        self.sim = sim
        self.scene = scene
        self.observer = Observer(scene, sim.bev())
        self.store = store
        self.tags = dict(tags or {})
        self._columns: list[dict[str, NDArray[Any]]] = []
        self._actors: list[dict[str, NDArray[Any]]] = []
        self._events: list[Event] = []
        self._route_id = ""

    @classmethod
    def from_config(cls, settings: AgentConfig, lane_graph: LaneGraph, sim: SimConfig | None = None) -> CarlaDriving:
        """The driver an agent config names, on a scene of ``lane_graph``, recording into its home's store; ``sim``
        defaults to the agent config's autoloop config's, else the defaults."""
        from autoloop.config import load_config
        from autoloop.paths import Paths
        from autoloop.stages import resolve_driver

        if sim is None:
            sim = load_config(settings.config).sim if settings.config is not None else SimConfig()
        scene = CarlaScene(lane_graph, sim.world_config().params())
        _, factory = resolve_driver(settings.driver)
        store = None if settings.home is None else EpisodeStore(Paths(settings.home).episodes)
        return cls(factory(scene), policy_name=settings.driver, lane_graph=lane_graph, sim=sim, store=store,
                   tags=settings.tags, scene=scene)

    def start(self, world_plan: Sequence[tuple[Any, Any]], *, route_id: str = "") -> None:
        """Begin a route: the evaluator's global plan (``(carla.Transform, RoadOption)`` pairs)."""
        route, start_m, end_m = plan_route(self.map, world_plan)
        lanes = tuple(piece.lane for piece in route.pieces)
        self.scene.start(route, timeout_s=route_timeout_s(self.map, lanes, end_m - start_m), start_m=start_m,
                         end_m=end_m)
        self.policy.reset(np.ones(1, dtype=bool))
        self._columns, self._actors, self._events = [], [], []
        self._route_id = route_id

    def step(self, snapshot: Snapshot, *, max_steer_angle_deg: float) -> Any:
        """The control for this tick (``carla.VehicleControl``), from the world as ``snapshot`` shows it."""
        scene = self.scene
        scene.update(snapshot)
        sc = scene.scene
        if sc.outcome.ev_n[0] or not self.running:
            self._events += outcome.step_events(sc, [0] if sc.outcome.ev_n[0] else [], [] if self.running else [0])
        chosen = self.policy.act() if isinstance(self.policy, WorldDriver) else self.policy.act(self.observer.observe())
        action = np.asarray(chosen, dtype=np.float32).reshape(1, 2)
        self._columns.append({**scene_columns(sc), "action": action})
        self._actors.append(actor_snapshot(sc))
        return vehicle_control(float(action[0, 0]), float(action[0, 1]), speed_mps=float(sc.ego.speed_mps[0]),
                               max_steer_rad=scene.params.bicycle.max_steer_rad,
                               max_steer_angle_deg=max_steer_angle_deg)

    @property
    def running(self) -> bool:
        """Whether the route goes on, as the scene judges it (the Leaderboard's own criteria decide in CARLA)."""
        return outcome.route_status(self.scene.scene, 0) is None

    def finish(self) -> Episode | None:
        """The route driven since :meth:`start` as an episode, written to the store (if any); ``None`` when no tick
        was driven."""
        if not self._columns:
            return None
        steps = {name: np.concatenate([c[name] for c in self._columns]) for name in self._columns[0]}
        steps["step"] = np.arange(len(self._columns), dtype=np.int32)
        record = outcome.route_record(self.scene.scene, 0)
        bev_shape = [int(n) for n in observation_space(self.sim.bev())["bev"].shape or ()]
        metadata = {
            "map_name": self.map.name,
            "route_id": self._route_id,
            "policy": self.policy_name,
            "tags": self.tags,
            "dt_s": self.scene.params.dt,
            "bev_shape": bev_shape,
            "record": {**asdict(record), "infractions": {k.value: v for k, v in record.infractions.items()}},
            "score": asdict(score_route(record)),
        }
        purpose = self.tags.get("purpose", "carla")
        episode = Episode(new_episode_id(f"{purpose}-carla"), "carla", steps, metadata,
                          events=events_table([e for e in self._events if e.kind in _INFRACTIONS]),
                          actors=actor_table(self._actors, 0, np.arange(len(self._actors))))
        if self.store is not None:
            self.store.put_map(self.map)
            self.store.write(episode)
        self._columns, self._actors, self._events = [], [], []
        return episode
