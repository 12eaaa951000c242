"""The MLflow pyfunc flavour of autoloop drivers: ``predict({"bev", "state"}) -> actions``."""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import Schema, TensorSpec

from policies.base import LearnedPolicy
from policies.checkpoint import load_policy


class DriverModel(PythonModel):
    """Loads a learned driver's checkpoint (any kind, :func:`policies.checkpoint.load_policy`); ``predict`` maps a
    batch of observations
    (``bev`` uint8 ``(B, C, H, W)``, ``state`` float32 ``(B, S)``) to actions float32 ``(B, 2)``."""

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


def signature(bev_shape: tuple[int, ...], state_size: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *bev_shape), "bev"),
                       TensorSpec(np.dtype(np.float32), (-1, state_size), "state")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2), "action")]),
    )
