"""The MLflow model of a driver, logged "from code": this file travels with every driver model and runs where the
model loads, with the packages logged beside it (``sim``, ``policies``: the model's ``code`` folder, put on
``sys.path`` by MLflow) and the exact pins of the model's requirements; autoloop itself need not be installed there.
"""

from typing import Any

import mlflow.models
import numpy as np
from mlflow.pyfunc.model import PythonModel

from policies.base import LearnedPolicy
from policies.checkpoint import load_policy


class DriverModel(PythonModel):
    """Loads a learned driver's checkpoint (any kind, :func:`policies.checkpoint.load_policy`); ``predict`` maps a
    batch of observations (``bev`` uint8 ``(B, C, H, W)``, ``state`` float32 ``(B, S)``) to actions float32
    ``(B, 2)``; ``policy`` is the driver itself."""

    policy: LearnedPolicy
    # The model is logged with an explicit tensor signature, which pyfunc validates inputs against. MLflow would
    # otherwise derive a schema from the type hints of ``predict`` (and warn that there are none): this skips that,
    # and ``predict`` stays unannotated so that logging does not try either.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self.policy = load_policy(context.artifacts["checkpoint"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.policy.act({"bev": np.asarray(model_input["bev"], dtype=np.uint8),
                                "state": np.asarray(model_input["state"], dtype=np.float32)})


mlflow.models.set_model(DriverModel())
