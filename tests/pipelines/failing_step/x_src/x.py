"""x: independent of a, b and c; writes <out>/x.txt."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("x\n")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "x.txt"), "w", encoding="utf-8") as fh:
        fh.write("from x\n")
    print("x: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
