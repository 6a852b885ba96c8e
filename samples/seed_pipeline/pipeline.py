"""The "create your first pipeline" article as one Azure ML SDK v1 script.

data prep -> train -> compare, plus an independent step that reads a tabular dataset (iris).
It is written exactly as a v1 user writes it: it imports `azureml.*`, reads the workspace from its
config, creates the compute cluster if it does not exist, and submits the pipeline to an experiment.
mlpipe runs it unchanged (`mlpipe run pipeline.py`) or compiles it for an orchestrator.
"""

from azureml.core import Dataset, Datastore, Environment, Experiment, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration
from azureml.data import OutputFileDatasetConfig
from azureml.pipeline.core import Pipeline, PipelineParameter
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()

# Datastores: the workspace default and the blob store by name (the same one here).
def_data_store = ws.get_default_datastore()
def_blob_store = Datastore(ws, "workspaceblobstore")
datastore = def_data_store

# Input data: a folder of small images, and the iris table.
my_dataset = Dataset.File.from_files([(def_blob_store, "train-images/")])
iris_tabular_dataset = Dataset.Tabular.from_delimited_files(
    path=[(def_blob_store, "iris/iris.csv")]
)

# Intermediate data written by the prep step, registered as a dataset when the step completes.
# register_on_complete returns a copy that carries the registration: the prep step is given that copy,
# while the train step consumes `output_data1` (every copy stands for the same output).
output_data1 = OutputFileDatasetConfig(destination=(datastore, "outputdataset/{run-id}"))
output_data_dataset = output_data1.register_on_complete(name="prepared_output_data")

# Compute: reuse the cluster if the workspace has it, else create it.
compute_name = "aml-compute"
vm_size = "STANDARD_D2_V2"
if compute_name in ws.compute_targets:
    compute_target = ws.compute_targets[compute_name]
    if compute_target and type(compute_target) is AmlCompute:
        print("Found compute target: " + compute_name)
else:
    print("Creating a new compute target...")
    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size=vm_size, min_nodes=0, max_nodes=4
    )
    compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)

    # Wait until the cluster is ready (optionally for a minimum number of nodes).
    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    print(compute_target.status.serialize())

# Environment: the curated scikit-learn environment, or an explicit list of packages.
aml_run_config = RunConfiguration()
aml_run_config.target = compute_target

USE_CURATED_ENV = True
if USE_CURATED_ENV:
    curated_environment = Environment.get(
        workspace=ws, name="AzureML-sklearn-0.24-ubuntu18.04-py37-cpu"
    )
    aml_run_config.environment = curated_environment
else:
    aml_run_config.environment.python.user_managed_dependencies = False
    aml_run_config.environment.python.conda_dependencies = CondaDependencies.create(
        conda_packages=["pandas", "scikit-learn"],
        pip_packages=["azureml-sdk", "azureml-dataset-runtime[fuse,pandas]"],
        pin_sdk_version=False,
    )

# Run-time settings of the training step, overridable per submission.
learning_rate = PipelineParameter(name="learning_rate", default_value=0.5)
epochs = PipelineParameter(name="epochs", default_value=40)

# Step 1: prepare the images (downloaded to the compute) into a features table.
dataprep_source_dir = "./dataprep_src"
entry_point = "prepare.py"
ds_input = my_dataset.as_named_input("input1")

data_prep_step = PythonScriptStep(
    script_name=entry_point,
    source_directory=dataprep_source_dir,
    arguments=["--input", ds_input.as_download(), "--output", output_data_dataset],
    compute_target=compute_target,
    runconfig=aml_run_config,
    allow_reuse=True,
)

# Step 2: train two models on the prepared features.
train_source_dir = "./train_src"
train_entry_point = "train.py"

training_results = OutputFileDatasetConfig(name="training_results", destination=def_blob_store)

train_step = PythonScriptStep(
    script_name=train_entry_point,
    source_directory=train_source_dir,
    arguments=[
        "--prepped_data",
        output_data1.as_input(),
        "--training_results",
        training_results,
        "--learning_rate",
        learning_rate,
        "--epochs",
        epochs,
    ],
    compute_target=compute_target,
    runconfig=aml_run_config,
    allow_reuse=True,
)

# Step 3: compare the models and write a report.
comparison = OutputFileDatasetConfig(
    name="comparison", destination=(def_blob_store, "reports/{run-id}/{output-name}")
)

compare_step = PythonScriptStep(
    name="compare",
    script_name="compare.py",
    source_directory="./compare_src",
    arguments=[
        "--training_results",
        training_results.as_input(name="training_results"),
        "--report",
        comparison,
    ],
    compute_target=compute_target,
    runconfig=aml_run_config,
    allow_reuse=True,
)

# An independent step that consumes a tabular dataset through the run context.
iris_summary = OutputFileDatasetConfig(name="iris_summary")

iris_step = PythonScriptStep(
    name="iris_train",
    script_name="iris_train.py",
    source_directory="./iris_src",
    arguments=["--output", iris_summary],
    inputs=[iris_tabular_dataset.as_named_input("iris_data")],
    compute_target=compute_target,
    runconfig=aml_run_config,
)

# The list of steps to run; the nested list is a group with no order of its own.
compare_models = [data_prep_step, train_step, compare_step]

pipeline1 = Pipeline(workspace=ws, steps=[compare_models, iris_step])

# Submit the pipeline and wait for it.
pipeline_run1 = Experiment(ws, "Compare_Models_Exp").submit(pipeline1)
pipeline_run1.wait_for_completion()
