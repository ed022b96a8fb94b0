"""The served model's code file (MLflow "models from code"): the C engine enhancer of
``seofp_lab/pyfunc.py``. MLflow copies this file into the logged model and runs it on load."""

from mlflow.models import set_model

from seofp_lab.pyfunc import SeofpEnhancer

set_model(SeofpEnhancer())
