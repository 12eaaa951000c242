"""MLflow "model from code" entry: logged with every driver model and run when the model loads."""

import mlflow.models

from autoloop.tracking.pyfunc import DriverModel

mlflow.models.set_model(DriverModel())
