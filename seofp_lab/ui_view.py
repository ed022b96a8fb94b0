"""The runs-table view seofp sets up in the MLflow UI (docs/mlflow.md#the-ui-on-the-runs).

MLflow 3's UI loads a *shared view* from an experiment tag ``mlflow.sharedViewState.<key>``
when its address has ``?viewStateShareKey=<key>``. seofp stores one, ``seofp-metrics``, on every
experiment it files runs in: the runs table with the key metrics as columns next to the run's
datasets and registered models. ``?workflowType=machine_learning`` selects the model-training
side of the UI (MLflow 3.17 otherwise opens an experiment on its GenAI overview).
"""

from __future__ import annotations

import json

VIEW_KEY = "seofp-metrics"
TAG_VIEW = "mlflow.sharedViewState." + VIEW_KEY
KEY_METRICS = ("pesq_wb", "stoi", "si_sdr", "size_bytes", "compression_pct", "speedup_vs_fp32",
               "paired_pesq_wb_delta", "paired_stoi_delta", "paired_si_sdr_delta")  # in order


def _column(kind: str, name: str) -> str:
    """The UI's column key: ``metrics.`stoi```."""
    return f"{kind}.`{name}`"


def view_state() -> str:
    """The JSON the UI reads: which columns the runs table shows (absent metrics show nothing)."""
    columns = [_column("attributes", "Dataset"), _column("attributes", "Models"),
               *(_column("metrics", m) for m in KEY_METRICS)]
    return json.dumps({"selectedColumns": columns, "columnOrder": columns,
                       "orderByKey": "attributes.start_time", "orderByAsc": False})


def ensure_view(client, experiment_id: str) -> None:  # noqa: ANN001 - MlflowClient
    """Store (or refresh) the ``seofp-metrics`` view on an experiment."""
    tags = client.get_experiment(experiment_id).tags
    state = view_state()
    if tags.get(TAG_VIEW) != state:
        client.set_experiment_tag(experiment_id, TAG_VIEW, state)


def runs_url(base: str, experiment_id: str) -> str:
    """The runs table of one experiment, model-training side, with the seofp view.

    >>> runs_url("http://127.0.0.1:5000", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=seofp-metrics'
    """
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}")
