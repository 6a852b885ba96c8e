"""`azureml.widgets.RunDetails`: shows nothing during capture (there is no run to show yet)."""

from __future__ import annotations


class RunDetails:
    def __init__(self, run_instance=None, *args, **kwargs):
        self.run_instance = run_instance

    def show(self, *args, **kwargs):
        return None

    def get_widget_data(self, *args, **kwargs) -> dict:
        return {}

    def _repr_html_(self) -> str:
        return ""
