"""The test harness itself: what the suite's cost relies on."""

import os

import pytest


@pytest.mark.xdist_group("harness")
def test_xdist_groups_reach_the_scheduler(request):
    # scripts/test keeps each orchestrator's tests on one worker with xdist_group (one Airflow
    # DB, one Prefect server). pytest 9.2 + xdist 3.8 drop the group silently: the scheduler sees
    # it only as the `@group` suffix of the node id.
    if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("dist") == "loadgroup":
        assert request.node.nodeid.endswith("@harness"), request.node.nodeid
