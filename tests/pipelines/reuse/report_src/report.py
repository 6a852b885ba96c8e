"""report: summarise model.json into <out>/report.txt (this step never reuses: allow_reuse=False)."""

import argparse
import json
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("report\n")

    with open(os.path.join(args.model, "model.json"), encoding="utf-8") as fh:
        model = json.load(fh)
    lines = [f"scale: {model['scale']}", f"total: {model['total']}"]
    lines += [f"{name}: {weight}" for name, weight in sorted(model["weights"].items())]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"report: {len(model['weights'])} weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
