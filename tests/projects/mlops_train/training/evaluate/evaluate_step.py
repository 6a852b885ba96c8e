"""Evaluate step: compare the new model with the registered one; cancel the run if not better."""

from __future__ import annotations

import argparse
import sys

from azureml.core import Run
from util.model_helper import get_model

METRIC = "mse"


def main() -> None:
    parser = argparse.ArgumentParser("evaluate")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--allow_run_cancel", default="true")
    args = parser.parse_args()
    may_cancel = args.allow_run_cancel.lower() == "true"

    run = Run.get_context()
    current = get_model(
        args.model_name,
        run.experiment.workspace,
        tag_name="experiment_name",
        tag_value=run.experiment.name,
    )
    if current is None:
        print("no model registered yet: the new one will be registered")
        return

    current_error = float(current.tags.get(METRIC, "inf"))
    new_error = run.parent.get_metrics().get(METRIC)
    if new_error is None:
        # Training was reused from an earlier run: it logged nothing on this pipeline run.
        print(f"no new {METRIC} on this pipeline run: nothing new to register")
        if may_cancel:
            run.parent.cancel()
        return

    print(f"registered {current.id}: {METRIC}={current_error:.3f}; new model: {new_error:.3f}")
    if new_error < current_error:
        print("the new model is better: it will be registered")
        return
    print("the new model is not better than the registered one")
    if may_cancel:
        run.parent.cancel()
        # cancel() only asks for the run to stop: end this step at once as well.
        sys.exit("evaluation: model not better, pipeline run canceled")


if __name__ == "__main__":
    main()
