"""Builds and publishes the flats training pipeline: train -> evaluate -> register.

Run from the project root: `python -m ml_service.pipelines.build_train_pipeline`.
On the first build the training CSV is uploaded to the datastore and registered as a dataset.
"""

from __future__ import annotations

import os

from azureml.core import Dataset, Datastore, Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

from ml_service.util.compute import get_compute
from ml_service.util.environment import conda_file_path, get_environment
from ml_service.util.settings import get_settings


def register_training_data(ws: Workspace, datastore: Datastore, data_file: str, name: str):
    if not os.path.exists(data_file):
        raise FileNotFoundError(f"training data {data_file!r} not found")
    target = "training-data/"
    datastore.upload_files(files=[data_file], target_path=target, overwrite=True)
    path = target + os.path.basename(data_file)
    dataset = Dataset.Tabular.from_delimited_files(path=(datastore, path))
    return dataset.register(
        workspace=ws,
        name=name,
        description="flat prices for training",
        tags={"format": "CSV"},
        create_new_version=True,
    )


def main() -> None:
    s = get_settings()
    ws = Workspace.get(name=s.workspace_name)
    compute = get_compute(ws, s.compute_name, s.vm_size, s.max_nodes)
    environment = get_environment(
        ws, s.env_name, conda_file_path(s.sources_dir, s.env_conda_file), s.rebuild_env
    )
    run_config = RunConfiguration()
    run_config.environment = environment

    datastore = ws.get_default_datastore()
    if s.dataset_name not in ws.datasets:
        register_training_data(ws, datastore, s.data_file, s.dataset_name)

    model_name = PipelineParameter(name="model_name", default_value=s.model_name)
    dataset_version = PipelineParameter(name="dataset_version", default_value=s.dataset_version)
    shrink = PipelineParameter(name="shrink", default_value=s.shrink)
    model_folder = PipelineData("model_folder", datastore=datastore)

    common = dict(compute_target=compute, source_directory=s.sources_dir, runconfig=run_config)
    train = PythonScriptStep(
        name="Train Model",
        script_name=s.train_script,
        arguments=[
            "--model_name",
            model_name,
            "--dataset_name",
            s.dataset_name,
            "--dataset_version",
            dataset_version,
            "--shrink",
            shrink,
            "--model_folder",
            model_folder,
        ],
        outputs=[model_folder],
        allow_reuse=True,
        **common,
    )
    evaluate = PythonScriptStep(
        name="Evaluate Model",
        script_name=s.evaluate_script,
        arguments=["--model_name", model_name, "--allow_run_cancel", s.allow_run_cancel],
        allow_reuse=False,
        **common,
    )
    register = PythonScriptStep(
        name="Register Model",
        script_name=s.register_script,
        arguments=["--model_name", model_name, "--model_folder", model_folder],
        inputs=[model_folder],
        allow_reuse=False,
        **common,
    )
    evaluate.run_after(train)
    register.run_after(evaluate)

    pipeline = Pipeline(workspace=ws, steps=[train, evaluate, register])
    pipeline.validate()
    published = pipeline.publish(
        name=s.pipeline_name, description="flats model training", version=s.build_id
    )
    print(f"published {published.name} (build {published.version})")


if __name__ == "__main__":
    main()
