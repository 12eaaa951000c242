"""infra/compose.yaml as `docker-compose config` reads it: valid, and wired the way infra/README.md says.

No Docker engine is needed: `config` validates the file against the Compose specification and prints it with the
variables filled in, which the tests read. They run with an empty environment and an empty env file, so they see
the defaults whatever the shell or ``infra/.env`` holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import INFRA, SHARED_HOME, image_is_pinned, run_tool

COMPOSE = INFRA / "compose.yaml"
GPU_OVERRIDE = INFRA / "compose.gpu.yaml"
INSTALL = "Debian: apt-get install -y docker-compose"
#: Services that run until stopped, and the one-shot ones (they exit once done).
LONG_RUNNING = {"postgres", "minio", "mlflow", "prefect", "ray-head", "ray-worker", "worker", "worker-gpu", "viewer"}
ONE_SHOT = {"minio-setup", "setup"}
#: Services of the autoloop image that read or write the shared folder.
SHARES_HOME = {"ray-head", "ray-worker", "worker", "worker-gpu", "viewer"}
AUTOLOOP_IMAGE = "autoloop:0.1.0"

Services = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def compose(env_file: Path, *args: str, files: tuple[Path, ...] = (COMPOSE,),
            variables: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``docker-compose --env-file env_file -f file... args`` with only PATH (and ``variables``) in its
    environment; returns its exit status, stdout and stderr."""
    options = ["--env-file", str(env_file)]
    for file in files:
        options += ["-f", str(file)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(variables or {})}
    result = run_tool("docker-compose", [*options, *args], install=INSTALL, env=env)
    return result.returncode, result.stdout, result.stderr


def normalized(env_file: Path, *, files: tuple[Path, ...] = (COMPOSE,),
               variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as `docker-compose config` prints it: validated, variables filled in."""
    status, out, err = compose(env_file, "config", files=files, variables=variables)
    assert status == 0, err
    loaded: dict[str, Any] = yaml.safe_load(out)
    return loaded


@pytest.fixture(scope="module")
def config(empty_env_file: Path) -> dict[str, Any]:
    return normalized(empty_env_file)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> Services:
    found: Services = config["services"]
    return found


def host_ips(service: dict[str, Any]) -> list[str]:
    """The address each published port of a service binds (``ip:host:container/proto`` once normalized; "" when
    it names none, i.e. every interface)."""
    return [port.rsplit(":", 2)[0] if port.count(":") == 2 else "" for port in map(str, service.get("ports", []))]


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, GPU_OVERRIDE)], ids=["compose", "with-gpu"])
def test_the_files_are_valid(empty_env_file: Path, files: tuple[Path, ...]) -> None:
    status, _, err = compose(empty_env_file, "config", "-q", files=files)
    assert status == 0, err


def test_the_stack_has_every_service(services: Services) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT


def test_published_ports_bind_loopback_unless_told(empty_env_file: Path, services: Services) -> None:
    published = {name: host_ips(service) for name, service in services.items() if service.get("ports")}
    assert set(published) == {"mlflow", "prefect", "ray-head", "viewer"}
    assert {ip for ips in published.values() for ip in ips} == {"127.0.0.1"}, published
    # every one follows AUTOLOOP_BIND
    rebound = normalized(empty_env_file, variables={"AUTOLOOP_BIND": "0.0.0.0"})["services"]
    assert {ip for service in rebound.values() for ip in host_ips(service)} == {"0.0.0.0"}


def test_long_running_services_have_health_checks_and_restart(services: Services) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", name


def test_dependencies_wait_for_health_or_completion(services: Services) -> None:
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            expected = "service_healthy" if dependency in LONG_RUNNING else "service_completed_successfully"
            assert how.get("condition") == expected, f"{name} -> {dependency}"
    assert services["mlflow"]["depends_on"]["minio-setup"]["condition"] == "service_completed_successfully"
    assert services["setup"]["depends_on"]["prefect"]["condition"] == "service_healthy"


def test_every_image_is_pinned(services: Services) -> None:
    for name, service in services.items():
        assert image_is_pinned(service["image"]), f"{name}: {service['image']}"
        if "build" in service:
            assert service["image"] == AUTOLOOP_IMAGE, name
            assert Path(service["build"]["context"]) / service["build"]["dockerfile"] == INFRA / "Dockerfile", name


def test_the_gpu_override_builds_a_cuda_image_for_training(empty_env_file: Path) -> None:
    services = normalized(empty_env_file, files=(COMPOSE, GPU_OVERRIDE))["services"]
    worker = services["worker-gpu"]
    assert image_is_pinned(worker["image"]) and worker["image"] != AUTOLOOP_IMAGE
    assert "TORCH_INDEX_URL" in worker["build"]["args"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_state_lives_in_named_volumes(config: dict[str, Any], services: Services) -> None:
    declared = set(config["volumes"])
    used = {volume.split(":", 1)[0] for service in services.values() for volume in service.get("volumes", [])
            if not volume.startswith("/")}
    assert used == declared == {"postgres-data", "minio-data", "autoloop-home"}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert not source.startswith("/") or Path(source).is_file(), f"{name} mounts a missing {source}"


def test_the_shared_folder_is_the_same_everywhere(services: Services) -> None:
    for name in SHARES_HOME:
        environment = services[name]["environment"]
        assert environment["AUTOLOOP_HOME"] == SHARED_HOME, name
        assert environment["PREFECT_LOCAL_STORAGE_PATH"].startswith(SHARED_HOME + "/"), name
        assert environment["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] == "true", name
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services[name]["volumes"]}
        assert mounts.get(SHARED_HOME) == "autoloop-home", name
    assert services["viewer"]["volumes"] == [f"autoloop-home:{SHARED_HOME}:ro"]


def test_the_servers_are_wired_as_documented(services: Services) -> None:
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql+psycopg2://mlflow:" in mlflow and "@postgres:5432/mlflow" in mlflow
    assert "--serve-artifacts" in mlflow and "--artifacts-destination=s3://" in mlflow
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mlflow:*" in services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    prefect = services["prefect"]["environment"]
    assert prefect["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    assert prefect["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert services["worker"]["command"][:5] == ["prefect", "worker", "start", "--pool", "autoloop-cpu"]
    assert services["worker-gpu"]["command"][:5] == ["prefect", "worker", "start", "--pool", "autoloop-gpu"]
    assert services["ray-worker"]["command"][:3] == ["ray", "start", "--address=ray-head:6379"]
    assert services["worker"]["environment"]["RAY_ADDRESS"] == "ray://ray-head:10001"
    assert services["setup"]["command"] == ["sh", "infra/setup.sh"]
    assert (INFRA / "setup.sh").is_file()
