import socket
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from autoloop.cli import app
from autoloop.network import Unreachable, check_reachable, endpoint, is_transient, redact
from tests.servers import free_port

runner = CliRunner()


def test_redact_hides_the_password_and_nothing_else() -> None:
    assert redact("postgresql+psycopg2://mlflow:s3cret@db:5432/mlflow") == "postgresql+psycopg2://mlflow:***@db:5432/mlflow"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact("ray://head:10001") == "ray://head:10001"
    assert redact("user:pw@host:1") == "user:***@host:1"


def test_endpoint_reads_host_and_port_with_the_schemes_defaults() -> None:
    assert endpoint("postgresql://u:p@db/mlflow") == ("db", 5432)
    assert endpoint("http://mlflow") == ("mlflow", 80)
    assert endpoint("ray://ray-head") == ("ray-head", 10001)
    assert endpoint("127.0.0.1:6379") == ("127.0.0.1", 6379)
    with pytest.raises(ValueError, match="expected host:port"):
        endpoint("localhost")


def test_check_reachable_names_the_address_without_its_password() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as raised:
        check_reachable(f"postgresql://autoloop:s3cret@127.0.0.1:{port}/mlflow", what="the tracking store")
    message = str(raised.value)
    assert f"the tracking store at postgresql://autoloop:***@127.0.0.1:{port}/mlflow does not answer" in message
    assert "s3cret" not in message
    with socket.create_server(("127.0.0.1", 0)) as server:
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}", what="a server")


def test_transient_failures_are_told_from_deterministic_ones() -> None:
    import ray.exceptions

    class Coded(Exception):
        error_code = "TEMPORARILY_UNAVAILABLE"

    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    assert is_transient(requests.ConnectionError("refused")) and is_transient(Coded())
    assert is_transient(ray.exceptions.WorkerCrashedError())
    assert not is_transient(ValueError("bad config")) and not is_transient(FileExistsError("evaluations"))
    try:  # what MLflow's client raises after its own retries: the connection error is the context
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError:
            raise RuntimeError("API request to http://x failed with exception ...")  # noqa: B904
    except RuntimeError as error:
        assert is_transient(error)
    try:
        try:
            raise ConnectionError("lost")
        except ConnectionError:
            raise ValueError("not the same failure") from None
    except ValueError as error:
        assert not is_transient(error)


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", "compute.ray_address"])
def test_a_server_that_refuses_the_connection_is_a_one_line_error_before_any_work(
        variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("AUTOLOOP_HOME", str(tmp_path / "home"))  # (the CLI sets it; restored afterwards)
    arguments = ["cycle", "--profile", "quick", "--home", str(tmp_path / "home")]
    if variable == "MLFLOW_TRACKING_URI":
        address = f"postgresql+psycopg2://autoloop:s3cret@127.0.0.1:{port}/mlflow"
        monkeypatch.setenv(variable, address)
        shown = address.replace("s3cret", "***")
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        config = tmp_path / "ray.yaml"
        config.write_text(f"compute: {{ray_address: '127.0.0.1:{port}'}}\n")
        arguments += ["--config", str(config)]
        shown = f"127.0.0.1:{port}"
    result = runner.invoke(app, arguments)
    assert result.exit_code == 1, result.output
    assert f"at {shown} does not answer" in result.output and "s3cret" not in result.output
    assert not (tmp_path / "home").exists()  # nothing written
