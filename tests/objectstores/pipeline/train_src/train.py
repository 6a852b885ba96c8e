import argparse
import json
import os
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--data")
ap.add_argument("--stats")
ap.add_argument("--model")
args = ap.parse_args()

with open(os.path.join(args.stats, "stats.json"), encoding="utf-8") as fh:
    stats = json.load(fh)
parts = sorted(os.listdir(os.path.join(args.data, "parts")))
os.makedirs(args.model, exist_ok=True)
where = {
    "home": os.path.expanduser("~"),
    "tmp": tempfile.gettempdir(),
    "cwd": os.getcwd(),
    "paths": [args.data, args.stats, args.model],
}
with open(os.path.join(args.model, "model.json"), "w") as fh:
    json.dump({"rows": stats["rows"], "parts": parts, "where": where}, fh)
print(f"train: {stats['rows']} rows, {len(parts)} parts")
