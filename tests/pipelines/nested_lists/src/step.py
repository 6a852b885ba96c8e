"""Append this step's name to the executions log; nothing else."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write(args.name + "\n")
    print(f"{args.name}: ran")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
