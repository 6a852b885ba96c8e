"""other: independent of the rest; copies message.txt (from this source folder) to <out>/other.txt."""

import argparse
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("other\n")

    with open(os.path.join(HERE, "message.txt"), encoding="utf-8") as fh:
        message = fh.read()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "other.txt"), "w", encoding="utf-8") as fh:
        fh.write(message)
    print("other: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
