"""The same cycle against an MLflow tracking server and a Prefect server, both started here on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from autoloop.episodes import EpisodeStore

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise TimeoutError(f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("servers")
    env = {**os.environ, "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(root / "prefect")}
    env.pop("PREFECT_API_URL", None)
    mlflow_port, prefect_port = _free_port(), _free_port()
    commands = {
        "mlflow": [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                   "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination",
                   str(root / "artifacts"), "--workers", "1"],
        "prefect": [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
    }
    processes = {}
    for name, command in commands.items():
        log = root / f"{name}.log"
        processes[name] = (subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                            start_new_session=True), log)
    try:
        mlflow_url, prefect_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}/api"
        _wait_healthy(f"{mlflow_url}/health", *processes["mlflow"])
        _wait_healthy(f"{prefect_url}/health", *processes["prefect"])
        yield mlflow_url, prefect_url
    finally:
        for process, _ in processes.values():
            os.killpg(process.pid, 15)
            process.wait(timeout=60)


def test_cycle_against_servers(servers: tuple[str, str], tmp_path: Path) -> None:
    mlflow_url, prefect_url = servers
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_url, "PREFECT_API_URL": prefect_url}
    # the servers' wiring is what this checks (the loop itself: test_cycle.py): a small cycle whose gate passes
    config = tmp_path / "small.yaml"
    config.write_text("profile: quick\ncollect: {episodes: 6, dataset_episodes: 6}\ntrain: {epochs: 2}\n"
                      "evaluate: {episodes: 3, report_clips: 1}\n"
                      "gate: {min_driving_score: 0.0, min_route_completion: 0.0}\n")
    result = subprocess.run([str(BIN / "autoloop"), "cycle", "--config", str(config), "--home", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # tracking went to the server, episodes stayed local
    assert EpisodeStore(tmp_path / "episodes").episode_ids("sim")

    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    champion = client.get_model_version_by_alias("autoloop-driver", "champion")
    assert "driving_score" in client.get_run(champion.run_id).data.metrics

    runs = httpx.post(f"{prefect_url}/flow_runs/filter", json={}, timeout=30).json()
    flows = {flow["id"]: flow["name"] for flow in httpx.post(f"{prefect_url}/flows/filter", json={}).json()}
    completed = sorted(flows[run["flow_id"]] for run in runs if run["state_type"] == "COMPLETED")
    assert completed == ["collect", "cycle", "evaluate", "promote", "train"]
