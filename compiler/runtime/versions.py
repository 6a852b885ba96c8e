"""One pipeline version per run, for steps started as pods (Airflow's kubernetes profile).

The task on the Airflow worker stages what its pod runs: the IR bundle and the step's snapshot in
`<default datastore>/.mlpipe/`. The run's first task records its DAG file's version (bundle and
every step's image) in `runs/<run id>/version.json`, write-once; a later task parsed from a DAG
file compiled again meanwhile stages the recorded bundle, image and snapshot instead (the
snapshot kept beside the DAG file, see `pins/`). Processes run with `--pin-version` make the same
choice in `__main__._pinned_ir`. Standard library + fsspec only.
"""

from __future__ import annotations

import json
import os

from . import store
from .state import Datastores, State, pin_keys


def stage_pod_version(
    bundle_path: str, ir_hash: str, run_id: str, step: str, snapshot: str, images: dict[str, str]
) -> tuple[str, str, str] | None:
    """(IR bundle URL, snapshots URL, image) of the version run `run_id` started with, staged for
    the pod; None when that version has no step `step`. `images`: this DAG file's image per step.
    Content-addressed files: concurrent tasks and reruns write each one at most once."""
    with open(bundle_path, "rb") as fh:
        bundle = fh.read()
    state = State(Datastores(json.loads(bundle)))
    bundles = store.join(state.root, "bundles")
    ir_url = store.join(bundles, f"{ir_hash}.json")
    if not store.exists(ir_url):
        store.write_bytes_atomic(ir_url, bundle)
    mine = {"bundle": f"{ir_hash}.json", "images": images}
    image = images[step]
    marker = store.join(state.run_dir(run_id), "version.json")
    if store.write_once(marker, json.dumps(mine, sort_keys=True).encode("utf-8")):
        # a recompile keeps this version's snapshots beside the DAG while the run goes on
        state.record_pins(run_id, pin_keys(mine["bundle"], None))
    pinned = store.read_json(marker) or mine
    name = pinned.get("bundle")
    if isinstance(name, str) and name != mine["bundle"] and "/" not in name:
        ir_url = store.join(bundles, name)
        steps = (store.read_json(ir_url) or {}).get("steps") or []
        found = [s for s in steps if s.get("name") == step]
        if not found:
            return None
        snapshot = found[0]["snapshot"]["hash"]
        image = (pinned.get("images") or {}).get(step) or image
        print(f"mlpipe: run {run_id!r} uses the version it started with, {name}")
    snapshots = store.join(state.root, "snapshots")
    target = store.join(snapshots, f"{snapshot}.tar.gz")
    if not store.exists(target):
        local = os.path.join(os.path.dirname(bundle_path), "snapshots", f"{snapshot}.tar.gz")
        with open(local, "rb") as fh:
            store.write_bytes_atomic(target, fh.read())
    return ir_url, snapshots, image
