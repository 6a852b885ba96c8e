"""train: scale each value by settings.json's "scale" (a file in this source folder that tests edit),
write <out>/model.json (with the epochs it was given)."""

import argparse
import csv
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prepped", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("train\n")

    with open(os.path.join(HERE, "settings.json"), encoding="utf-8") as fh:
        scale = json.load(fh)["scale"]
    with open(os.path.join(args.prepped, "prepped.csv"), newline="", encoding="utf-8") as fh:
        rows = [(r["name"], int(r["value"])) for r in csv.DictReader(fh)]
    model = {
        "epochs": args.epochs,
        "scale": scale,
        "weights": {n: v * scale for n, v in rows},
        "total": sum(v for _, v in rows) * scale,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as fh:
        json.dump(model, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(f"train: scale {scale}, total {model['total']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
