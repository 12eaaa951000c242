"""``CarlaEnv``: without a server, the one thing to check is how it says there is none; with one (marker
``carla``: ``CARLA_HOST[:PORT]`` set), the Gymnasium contract, a route driven, and every actor it spawned gone after
``close``."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sim.embedded.config import WorldConfig

carla = pytest.importorskip("carla", reason="the CARLA side needs the carla package (autoloop[carla])")

from sim.carla.env import CarlaEnv  # noqa: E402

ROUTES = "carla/routes/lb1_routes_training.xml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_no_server_is_a_clear_error_naming_the_address(shared_data: Path) -> None:
    port = _free_port()
    with pytest.raises(ConnectionError, match=rf"no CARLA server answers at 127\.0\.0\.1:{port} within 1 s"):
        CarlaEnv(shared_data / ROUTES, WorldConfig().params(), port=port, timeout_s=1.0)


def test_an_empty_route_file_is_refused_naming_it(tmp_path: Path) -> None:
    routes = tmp_path / "none.xml"
    routes.write_text("<routes></routes>")
    with pytest.raises(ValueError, match=f"{routes}: no <route>"):
        CarlaEnv(routes, WorldConfig().params(), port=_free_port(), timeout_s=1.0)


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    address = os.environ.get("CARLA_HOST")
    if not address:
        pytest.skip("needs a CARLA server: set CARLA_HOST (host[:port])")
    host, _, port = address.partition(":")
    yield host, int(port or 2000)


@pytest.mark.carla
def test_the_env_keeps_the_gymnasium_contract_and_cleans_up(server: tuple[str, int], shared_data: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    host, port = server
    env = CarlaEnv(shared_data / ROUTES, WorldConfig().params(), host=host, port=port, traffic_vehicles=10,
                   pedestrians=5)
    try:
        check_env(env, skip_render_check=True)
        observation, info = env.reset(seed=3, options={"route_id": "0"})
        assert env.observation_space.contains(observation)
        assert info["status"] == "" and 0.0 <= info["route_completion"] <= 1.0
        spawned = {actor.id for actor in env._actors}
        assert len(spawned) > 5
        total = 0.0
        for _ in range(100):
            observation, reward, terminated, truncated, info = env.step(np.array([0.0, 0.3], dtype=np.float32))
            total += reward
            if terminated or truncated:
                break
        assert info["route_completion"] > 0.0 and np.isfinite(total)
    finally:
        env.close()
    alive = {actor.id for actor in env.world.get_actors()}
    assert not spawned & alive, "actors the env spawned are still in the world"
    assert not env.world.get_settings().synchronous_mode
