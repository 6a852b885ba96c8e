"""Step environments keep what the stripped `azureml-*` packages brought, map the deprecated
`sklearn` alias, and a requirement that cannot install on this Python fails with one clear
message naming it (not a wall of installer output blaming every package)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from mlpipe.api.environment import conda_to_pip, pip_requirements
from mlpipe.runtime import envs


def test_sdk_packages_become_what_they_brought():
    pip, notes = pip_requirements(
        ["python=3.7.*", "pip", "numpy=1.21", "r-essentials=3.6.0", "r=3.6.0", "azureml-sdk"],
        [
            "azureml-sdk==1.27.*",
            "azureml-defaults==1.27.*",
            "azureml-dataset-runtime[fuse,pandas]",
            "azureml-mlflow",
            "azureml-core",
            "sklearn",
            "scikit-learn",
            "inference-schema[numpy-support]",
        ],
    )
    assert pip == [
        "numpy==1.21.*",
        "scikit-learn",
        "inference-schema[numpy-support]",
        "pandas",
        "mlflow-skinny",
    ]
    assert "sklearn -> scikit-learn (the deprecated PyPI alias)" in notes
    assert "azureml-mlflow -> mlflow-skinny" in notes
    # azureml-core brought neither pandas nor MLflow: it is simply served by mlpipe
    assert pip_requirements([], ["azureml-core"]) == ([], [])
    # a pin of its own wins over what the SDK brought
    assert pip_requirements([], ["pandas<2", "azureml-sdk"])[0] == ["pandas<2"]


def test_conda_versions_mean_the_series():
    assert conda_to_pip("numpy=1.19") == "numpy==1.19.*"
    assert conda_to_pip("pandas=1.1.*") == "pandas==1.1.*"
    assert conda_to_pip("scipy>=1.5") == "scipy>=1.5"


def test_python_pin_is_judged_against_this_interpreter():
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert envs._python_matches(here + ".*") and envs._python_matches(here)
    assert not envs._python_matches("3.7.*")
    assert envs._python_matches(">=3.8")  # not a plain version: not judged


def test_explain_names_only_the_requirement_at_fault():
    output = textwrap.dedent("""\
        error: No solution found when resolving dependencies
          cause: Because pandas==2.2.0 depends on numpy>=1.23.2,<2 and you require numpy==1.19.5, we can conclude that your requirements and pandas==2.2.0 are incompatible.
                 And because you require pandas==2.2.0, we can conclude that your requirements are unsatisfiable.
        """)
    message = envs.explain_install_failure(
        "train", output, ["six==1.16.0", "numpy==1.19.5", "pandas==2.2.0"], "3.7.*"
    )
    assert message.startswith(
        "environment 'train': could not install numpy==1.19.5, pandas==2.2.0 on Python"
    )
    assert "six" not in message
    assert "(the environment asks for Python 3.7.*)" in message
    assert "relax the pin" in message


def test_a_package_that_cannot_build_here_fails_with_one_clear_message(tmp_path):
    if envs.find_uv() is None:
        pytest.fail("uv is part of mlpipe's dev environment (scripts/setup)")
    pkg = tmp_path / "oldpkg"
    pkg.mkdir()
    (pkg / "setup.py").write_text(
        "raise RuntimeError('this release predates your Python: ' + 'x' * 200)\n"
    )
    spec = {
        "name": "legacy",
        "python_version": "3.7.*",
        "pip_packages": [f"oldpkg @ file://{pkg}"],
        "content_hash": "legacy-" + "0" * 26,
    }
    cache = tmp_path / "cache"
    with pytest.raises(envs.EnvironmentBuildError) as info:
        envs.ensure_env(spec, str(cache))
    message = str(info.value)
    assert message.startswith("environment 'legacy': could not install oldpkg @ file://")
    assert (
        "no pre-built wheel for Python" in message and "building it from source failed" in message
    )
    assert "Traceback" not in message and message.count("\n") == 0
    log = message.rsplit("(installer output: ", 1)[1].rstrip(")")
    assert "this release predates your Python" in open(log).read()
    assert not os.path.exists(cache / "envs" / envs.env_key(spec))
