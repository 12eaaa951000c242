"""A registered driver loads and predicts where autoloop is not installed: in a virtual environment of the base
interpreter that sees this one's third-party packages (torch, MLflow, numba, SB3: a plain path in a ``.pth`` file)
but not autoloop, ``sim`` or ``policies`` (the editable install's hook, itself a ``.pth`` file there, does not run),
``mlflow.pyfunc.load_model("models:/autoloop-driver@champion")`` predicts on observations the simulator rendered
exactly the actions autoloop's own :func:`autoloop.tracking.load_policy` does, and each model's requirements pin
the installed version of every distribution its code imports (real SQLite store, real simulator)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from stable_baselines3.common.policies import ActorCriticPolicy

from autoloop import tracking
from autoloop.config import SimConfig
from autoloop.paths import Paths
from policies.base import LearnedPolicy
from policies.bc import BcNet, BcNetConfig, BcPolicy
from policies.sb3 import Sb3Policy, policy_kwargs
from policies.waypoints import ControllerParams, WaypointNet, WaypointNetConfig, WaypointPolicy
from sim.scene.observation import Observation

MODEL = "autoloop-driver"
#: The models the clean environment loads, in this order (each kind's code adds to what the ones before imported).
URIS = {"bc": f"models:/{MODEL}@champion", "waypoints": f"models:/{MODEL}@challenger", "ppo": f"models:/{MODEL}/3"}

#: Run in the clean environment: argv[1] the folder with ``uris.json`` and ``observations.npz``, where it writes
#: ``actions.npz`` and ``report.json``.
CLEAN_SCRIPT = r'''
import ast, importlib, importlib.metadata, json, re, sys
from pathlib import Path

import numpy as np

def importable(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True

work = Path(sys.argv[1])
report = {"before": {name: importable(name) for name in ("autoloop", "sim", "policies")}}
import mlflow

observations = dict(np.load(work / "observations.npz"))
distributions = importlib.metadata.packages_distributions()
canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()
actions, requirements, imported = {}, {}, {}
for kind, uri in json.loads((work / "uris.json").read_text()).items():
    folder = work / "models" / kind
    folder.mkdir(parents=True)
    model = mlflow.pyfunc.load_model(uri, dst_path=str(folder))
    actions[kind] = model.predict(observations)
    # the code this model's loading and predicting ran (the model's file; ours imported so far), and what it imports
    ours = [module for name, module in list(sys.modules.items()) if name.split(".")[0] in ("sim", "policies")]
    files = [*folder.glob("*.py"), *(Path(module.__file__) for module in ours if getattr(module, "__file__", None))]
    tops = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.split(".")[0])
    # (a module several distributions provide, as mlflow and mlflow-skinny: each of them)
    imported[kind] = {top: sorted({canonical(dist) for dist in distributions.get(top, [top])})
                      for top in sorted(tops - {*sys.stdlib_module_names, "sim", "policies"})}
    pins = [line.strip() for line in (folder / "requirements.txt").read_text().splitlines() if line.strip()]
    requirements[kind] = {canonical(pin.split("==")[0]): pin.split("==")[1] for pin in pins}
report["after"] = {"autoloop": importable("autoloop")}
report["sim_file"] = str(Path(sys.modules["sim"].__file__).relative_to(work))
report["imported"] = imported
report["requirements"] = requirements
report["installed"] = {dist: importlib.metadata.version(dist).split("+")[0]
                       for pins in requirements.values() for dist in pins}
np.savez(work / "actions.npz", **actions)
(work / "report.json").write_text(json.dumps(report))
'''


def rendered_observations() -> Observation:
    """Observations the simulator rendered: four routes of the junction at reset and after 10 and 20 steps of
    driving on (a 32 px BEV)."""
    env = gym.make_vec("autoloop/Junction-v0", num_envs=4, vectorization_mode="vector_entry_point",
                       bev=SimConfig(bev_size_px=32).bev())
    observation, _ = env.reset(seed=7)
    frames = [observation]
    for step in range(1, 21):
        observation, *_ = env.step(np.tile(np.array([[0.1, 0.7]], np.float32), (4, 1)))
        if step % 10 == 0:
            frames.append(observation)
    env.close()
    return {key: np.concatenate([frame[key] for frame in frames]) for key in ("bev", "state")}


def drivers(observation: Observation) -> dict[str, LearnedPolicy]:
    """A driver of each kind, freshly initialised (seeded), shaped for ``observation``."""
    torch.manual_seed(0)
    channels, size = observation["bev"].shape[1:3]
    state_size = observation["state"].shape[1]
    space = gym.spaces.Dict({"bev": gym.spaces.Box(0, 1, (channels, size, size), np.uint8),
                             "state": gym.spaces.Box(-4.0, 4.0, (state_size,), np.float32)})
    ppo = ActorCriticPolicy(space, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), lambda _: 0.0,
                            **policy_kwargs(width=4, hidden=16, log_std_init=-1.0))
    return {"bc": BcPolicy(BcNet(BcNetConfig(channels, size, state_size, width=4, hidden=16))),
            # the controller on the route: the state vector's layout and the geometry of sim
            "waypoints": WaypointPolicy(WaypointNet(WaypointNetConfig(channels, size, state_size, width=4, hidden=16)),
                                        ControllerParams(steering="route")),
            "ppo": Sb3Policy(ppo)}


def clean_environment(folder: Path) -> Path:
    """A virtual environment of the base interpreter whose one ``.pth`` file names this interpreter's
    site-packages (a plain path: the ``.pth`` files in it, autoloop's editable install among them, do not run);
    returns its python."""
    venv.create(folder, with_pip=False, symlinks=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "autoloop_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return python


@dataclass(frozen=True)
class CleanRun:
    """The drivers' actions on ``observation``: ``expected`` in autoloop (:func:`autoloop.tracking.load_policy`),
    ``actions`` in the clean environment (pyfunc), with what ``CLEAN_SCRIPT`` reported there."""

    observation: Observation
    expected: dict[str, NDArray[np.float32]]
    actions: dict[str, NDArray[np.float32]]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    pytest.MonkeyPatch().delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path_factory.mktemp("home")
    paths = Paths(home)
    experiment_id = tracking.configure(paths, "portable")
    observation = rendered_observations()
    lock = tracking.registry_lock(paths)
    for kind, driver in drivers(observation).items():
        with tracking.stage_run("train", experiment_id=experiment_id, parent_run_id=None):
            example = {key: value[:1] for key, value in observation.items()}
            logged = tracking.log_policy(driver, home / f"{kind}.pt", example)
        alias = {"bc": tracking.CHAMPION, "waypoints": tracking.CHALLENGER}.get(kind)
        tracking.register(logged.model_uri, MODEL, lock=lock, tags={}, alias=alias)
    expected = {kind: tracking.load_policy(uri).act(observation) for kind, uri in URIS.items()}

    work = tmp_path_factory.mktemp("outside")  # the working folder: outside the repository
    python = clean_environment(work / "env")
    (work / "uris.json").write_text(json.dumps(URIS))
    np.savez(work / "observations.npz", bev=observation["bev"], state=observation["state"])
    done = subprocess.run([python, "-c", CLEAN_SCRIPT, str(work)], cwd=work, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(work), "MLFLOW_TRACKING_URI": paths.tracking_uri})
    assert done.returncode == 0, done.stderr[-3000:]
    return CleanRun(observation=observation, expected=expected, actions=dict(np.load(work / "actions.npz")),
                    report=json.loads((work / "report.json").read_text()))


def test_the_environment_has_no_autoloop(clean_run: CleanRun) -> None:
    assert clean_run.report["before"] == {"autoloop": False, "sim": False, "policies": False}
    assert clean_run.report["after"] == {"autoloop": False}
    # the code that ran came with the models (the first one's code folder)
    assert clean_run.report["sim_file"] == "models/bc/code/sim/__init__.py"


def test_the_registered_drivers_predict_there_what_they_predict_in_autoloop(clean_run: CleanRun) -> None:
    assert len(np.unique(clean_run.observation["state"][:, 0])) > 1  # the egos moved: their speeds differ
    for kind, actions in clean_run.actions.items():
        assert actions.dtype == np.float32 and actions.shape == (len(clean_run.observation["state"]), 2), kind
        np.testing.assert_array_equal(actions, clean_run.expected[kind], err_msg=kind)
        # the drivers do read the observations
        assert np.all(np.abs(actions) <= 1.0) and len(np.unique(actions, axis=0)) > 1, kind


def test_the_requirements_pin_what_the_model_code_imports(clean_run: CleanRun) -> None:
    report = clean_run.report
    for kind in URIS:
        pins, imported = report["requirements"][kind], report["imported"][kind]
        assert {"torch", "numpy", "numba", "gymnasium", "mlflow"} <= set(imported), imported
        # every module imported is pinned, and every pin is of a module imported, at the version installed here
        assert all(set(dists) & set(pins) for dists in imported.values()), (kind, imported, pins)
        assert all(any(dist in dists for dists in imported.values()) for dist in pins), (kind, imported, pins)
        assert all(pins[dist] == report["installed"][dist] for dist in pins), pins
    assert "stable-baselines3" in report["requirements"]["ppo"]
    assert "stable-baselines3" not in report["requirements"]["bc"]
