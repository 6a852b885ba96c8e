"""work_<i>: "train" on one shard and write <out>/partial.json.

The weight starts at 0 and moves towards each value by lr for `epochs` passes over the shard, so
it depends on --epochs, --lr and the order of the values. AML_PARAMETER_shuffle ("True"/"False")
shuffles that order with a fixed seed; AML_PARAMETER_mode is echoed.
"""

import argparse
import json
import os
import random


def as_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise SystemExit(f"work: not a boolean: {text!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    name = f"work_{args.index}"
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write(name + "\n")

    shuffle = as_bool(os.environ["AML_PARAMETER_shuffle"])
    mode = os.environ["AML_PARAMETER_mode"]

    with open(os.path.join(args.shards, f"shard_{args.index}.txt"), encoding="utf-8") as fh:
        values = [int(line) for line in fh if line.strip()]
    if shuffle:
        random.Random(1000 + args.index).shuffle(values)

    weight = 0.0
    for _ in range(args.epochs):
        for v in values:
            weight += args.lr * (v - weight)

    partial = {
        "index": args.index,
        "values": values,
        "sum": sum(values),
        "weight": round(weight, 6),
        "epochs": args.epochs,
        "lr": args.lr,
        "shuffle": shuffle,
        "mode": mode,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "partial.json"), "w", encoding="utf-8") as fh:
        json.dump(partial, fh, sort_keys=True)
        fh.write("\n")
    print(f"{name}: {len(values)} values, weight {partial['weight']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
