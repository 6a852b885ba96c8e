"""Build and publish the training pipeline.

Run from the project root: python -m ml_service.pipelines.build_pipeline
"""

from azureml.core import Workspace
from azureml.core.runconfig import RunConfiguration
from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

from ml_service.util.compute import find_or_create_compute
from ml_service.util.environment import training_environment
from ml_service.util.settings import Settings


def main():
    cfg = Settings()
    ws = Workspace.get(
        name=cfg.workspace_name,
        subscription_id=cfg.subscription_id,
        resource_group=cfg.resource_group,
    )
    compute = find_or_create_compute(ws, cfg.compute_name, cfg.vm_size, cfg.max_nodes)
    run_config = RunConfiguration()
    run_config.environment = training_environment(
        ws, cfg.environment_name, cfg.sources_dir, cfg.conda_file
    )

    model_name = PipelineParameter(name="model_name", default_value=cfg.model_name)
    model_dir = PipelineData("model_dir", datastore=ws.get_default_datastore())
    common = dict(
        source_directory=cfg.sources_dir,
        compute_target=compute,
        runconfig=run_config,
        allow_reuse=False,
    )
    train = PythonScriptStep(
        name="train",
        script_name=cfg.train_script,
        arguments=["--model_name", model_name, "--model_dir", model_dir],
        outputs=[model_dir],
        **common,
    )
    evaluate = PythonScriptStep(
        name="evaluate",
        script_name=cfg.evaluate_script,
        arguments=["--model_name", model_name],
        **common,
    )
    register = PythonScriptStep(
        name="register",
        script_name=cfg.register_script,
        arguments=["--model_name", model_name, "--model_dir", model_dir],
        inputs=[model_dir],
        **common,
    )
    evaluate.run_after(train)
    register.run_after(evaluate)

    pipeline = Pipeline(workspace=ws, steps=[train, evaluate, register])
    pipeline.validate()
    published = pipeline.publish(
        name=cfg.pipeline_name, description="train, evaluate, register", version=cfg.build_id
    )
    print(f"published {published.name} for build {published.version}")


if __name__ == "__main__":
    main()
