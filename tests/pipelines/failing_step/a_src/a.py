"""a: write <out>/a.txt."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("a\n")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "a.txt"), "w", encoding="utf-8") as fh:
        fh.write("from a\n")
    print("a: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
