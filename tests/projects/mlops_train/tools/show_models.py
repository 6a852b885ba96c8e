"""Print every version of the flats model as JSON and download one of them.

A plain script run outside any pipeline: `python tools/show_models.py MODEL_NAME VERSION DIR`.
"""

from __future__ import annotations

import json
import sys

from mlpipe import Model, Workspace


def main(name: str, version: int, target_dir: str) -> None:
    ws = Workspace.from_config()
    versions = sorted(Model.list(ws, name=name), key=lambda m: m.version)
    chosen = Model(ws, name=name, version=version)
    path = chosen.download(target_dir=target_dir, exist_ok=True)
    report = {
        "versions": [{"id": m.id, "version": m.version, "tags": m.tags} for m in versions],
        "downloaded": path,
    }
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
