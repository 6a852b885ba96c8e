import argparse
import json
import os
import tempfile

from azureml.core import Run

ap = argparse.ArgumentParser()
ap.add_argument("--raw")
ap.add_argument("--out")
ap.add_argument("--stats")
args = ap.parse_args()

run = Run.get_context()
table = run.input_datasets["table"]
rows = []
for path in table.files:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    rows.extend(lines[1:])  # header line first
names = sorted(
    os.path.relpath(os.path.join(d, f), args.raw) for d, _, fs in os.walk(args.raw) for f in fs
)
os.makedirs(os.path.join(args.out, "parts"), exist_ok=True)
for name in names:
    with open(os.path.join(args.raw, name), encoding="utf-8") as src:
        text = src.read()
    with open(os.path.join(args.out, "parts", name.replace("/", "_")), "w") as dst:
        dst.write(text.upper())
where = {
    "home": os.path.expanduser("~"),
    "tmp": tempfile.gettempdir(),
    "cwd": os.getcwd(),
    "paths": [args.raw, args.out, args.stats, *table.files],
}
with open(os.path.join(args.out, "where.json"), "w") as fh:
    json.dump(where, fh)
os.makedirs(args.stats, exist_ok=True)
with open(os.path.join(args.stats, "stats.json"), "w") as fh:
    json.dump({"rows": len(rows), "files": names, "where": where}, fh)
print(f"prep: {len(rows)} rows, {len(names)} raw files")
