"""The MLflow server fixture answers MLflow's REST API (other tests rely on it)."""

import pytest

from tests.servers import mlflow_api

# One MLflow server per session: keep these tests on one xdist worker (scripts/test: loadgroup).
pytestmark = pytest.mark.xdist_group("mlflow")


def test_mlflow_server_serves_the_rest_api(mlflow_server):
    created = mlflow_api(mlflow_server, "experiments/create", {"name": "fixture-check"})
    got = mlflow_api(mlflow_server, "experiments/get-by-name", {"experiment_name": "fixture-check"})
    assert got["experiment"]["experiment_id"] == created["experiment_id"]
    models = mlflow_api(mlflow_server, "registered-models/search", {"max_results": 10})
    # other tests of the session may have registered models on this shared server
    assert isinstance(models.get("registered_models", []), list)
