"""merge: read every partial.json (in the order of the --part arguments), write <out>/merged.json."""

import argparse
import json
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--part", action="append", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("merge\n")

    parts = []
    for folder in args.part:
        with open(os.path.join(folder, "partial.json"), encoding="utf-8") as fh:
            parts.append(json.load(fh))
    merged = {
        "parts": len(parts),
        "indexes": [p["index"] for p in parts],
        "total": sum(p["sum"] for p in parts),
        "weights": [p["weight"] for p in parts],
        "mean_weight": round(sum(p["weight"] for p in parts) / len(parts), 6),
        "epochs": args.epochs,
        "lr": parts[0]["lr"],
        "shuffle": os.environ["AML_PARAMETER_shuffle"],
        "mode": os.environ["AML_PARAMETER_mode"],
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "merged.json"), "w", encoding="utf-8") as fh:
        json.dump(merged, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(
        f"merge: {len(parts)} parts, total {merged['total']}, mean weight {merged['mean_weight']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
