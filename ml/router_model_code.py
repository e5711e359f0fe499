"""MLflow models-from-code entry point: the registered `case-router` pyfunc is this file's model.

(Logging the model as code, not as a pickled object, keeps the registry free of cloudpickle
blobs; the bundle itself travels as the version's `bundle` artifact.)
"""

from mlflow.models import set_model

from ml.registry import CaseRouterModel

set_model(CaseRouterModel())
