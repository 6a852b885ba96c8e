"""split: deal the numbers 1..N round-robin into <out>/shard_<i>.txt (N = 20 if mode is "fast",
else 40)."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("split\n")

    total = 20 if args.mode == "fast" else 40
    shards = [[] for _ in range(args.parts)]
    for n in range(1, total + 1):
        shards[(n - 1) % args.parts].append(n)
    os.makedirs(args.out, exist_ok=True)
    for i, shard in enumerate(shards):
        with open(os.path.join(args.out, f"shard_{i}.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(f"{n}\n" for n in shard))
    print(f"split: {total} numbers into {args.parts} shards (mode={args.mode})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
