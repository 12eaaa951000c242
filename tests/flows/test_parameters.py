"""Flow parameters of an evaluation in CARLA: ``backend``, ``routes`` and ``carla`` over the config, and the CARLA
servers the run will hold slots for; parameters that cannot be used fail naming themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import parameters
from tests.autoloop.carla.test_evaluate_carla import CARLA_VARIABLES, install


def test_backend_routes_and_carla_keys_override_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CARLA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    found = install(tmp_path, {}, monkeypatch)
    embedded = parameters.load(None, "quick")
    assert embedded.evaluate.backend == "embedded" and parameters.carla_servers(embedded) == 0
    config = parameters.load(None, "quick", backend="carla", routes=str(found.routes), carla={"gpus": [0, 1]})
    assert config.evaluate.carla.routes == found.routes and config.evaluate.carla.gpus == (0, 1)
    assert parameters.carla_servers(config) == 2
    with pytest.raises(parameters.ParameterError, match=r"parameter backend='carl': unknown backend"):
        parameters.load(None, "quick", backend="carl")
    with pytest.raises(parameters.ParameterError,
                       match=r"(?s)with carla=\{'gpu': 1\}: .*unknown key 'evaluate.carla.gpu'"):
        parameters.load(None, "quick", backend="carla", carla={"gpu": 1})
    missing = parameters.load(None, "quick", backend="carla", routes=str(tmp_path / "missing.xml"))
    with pytest.raises(parameters.ParameterError, match=r"evaluate.carla.routes .*missing.xml: no such file"):
        parameters.carla_servers(missing)
