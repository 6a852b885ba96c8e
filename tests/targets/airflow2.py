"""Airflow 2.10 driver: the same as the Airflow 3 one (tests/targets/airflow.py), on `.venvs/airflow2`.

Managed platforms still run Airflow 2.10; generated DAGs import the Airflow 3 names with 2.10
fallbacks. `airflow dags test` of 2.10 takes the DAG file through `--subdir`.
"""

from __future__ import annotations

from pathlib import Path

from .airflow import AirflowDriver


class Airflow2Driver(AirflowDriver):
    name = "airflow2"
    target = "airflow"  # the same artifacts as for Airflow 3
    venv = "airflow2"

    @staticmethod
    def dag_file_option(dag: Path) -> list[str]:
        return ["--subdir", str(dag)]


DRIVER = Airflow2Driver()
