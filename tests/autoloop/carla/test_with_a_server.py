"""With a CARLA server and the Leaderboard (marker ``carla``: ``CARLA_HOST[:PORT]`` and ``LEADERBOARD_ROOT``,
``SCENARIO_RUNNER_ROOT`` set, the server running Town01): autoloop's agent drives two short Leaderboard routes in
the Leaderboard's own evaluator, through ``autoloop evaluate --backend carla``, and keeps them as ``carla`` episodes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoloop.cli import app
from autoloop.episodes import EpisodeStore
from autoloop.paths import Paths
from sim.scenarios.routes import read_routes

pytestmark = pytest.mark.carla

#: The first stretch of two Leaderboard 1.0 training routes on Town01, as Leaderboard 2.0 routes.
ROUTE_IDS = ("0", "1")
ROUTE_M = 150.0


def _short_routes(shared_data: Path, path: Path) -> Path:
    specs = {s.route_id: s for s in read_routes(shared_data / "carla" / "routes" / "lb1_routes_training.xml")}
    routes = []
    for route_id in ROUTE_IDS:
        spec = specs[route_id]
        points, travelled = [spec.waypoints[0]], 0.0
        for point in spec.waypoints[1:]:
            travelled += float(((point - points[-1]) ** 2).sum() ** 0.5)
            points.append(point)
            if travelled > ROUTE_M:
                break
        positions = "".join(f'<position x="{x:.2f}" y="{-y:.2f}" z="0.0"/>' for x, y in points)
        routes.append(f'<route id="{route_id}" town="{spec.town}"><weathers><weather route_percentage="0" '
                      f'cloudiness="5.0" precipitation="0.0" sun_altitude_angle="45.0"/></weathers>'
                      f'<waypoints>{positions}</waypoints><scenarios></scenarios></route>')
    path.write_text(f"<routes>{''.join(routes)}</routes>\n")
    return path


def test_the_agent_drives_leaderboard_routes_in_carla(tmp_path: Path, shared_data: Path) -> None:
    host = os.environ.get("CARLA_HOST")
    if not host or not os.environ.get("LEADERBOARD_ROOT") or not os.environ.get("SCENARIO_RUNNER_ROOT"):
        pytest.skip("needs a CARLA server (CARLA_HOST) and the Leaderboard (LEADERBOARD_ROOT, SCENARIO_RUNNER_ROOT)")
    routes = _short_routes(shared_data, tmp_path / "routes.xml")
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["evaluate", "--home", str(home), "--model", "expert", "--backend", "carla",
                                      "--routes", str(routes), "--carla-host", host if ":" in host else f"{host}:2000"])
    assert result.exit_code == 0, result.output
    assert "Failed - Agent couldn't be set up" not in result.output
    store = EpisodeStore(Paths(home).episodes)
    episodes = [store.read(episode_id) for episode_id in store.episode_ids("carla")]
    assert len(episodes) == len(ROUTE_IDS)
    assert all(episode.num_steps > 20 and episode.actors is not None for episode in episodes)
