"""Step a: write the numbers 1..count, one per line, to <out>/numbers.txt."""

import argparse
import os


def record(log_path: str, step: str) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(step + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    record(args.log, "a")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "numbers.txt"), "w", encoding="utf-8") as fh:
        for n in range(1, args.count + 1):
            fh.write(f"{n}\n")
    print(f"a: wrote {args.count} numbers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
