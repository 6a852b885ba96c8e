"""c: copy b.txt and add a line, to <out>/c.txt."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("c\n")
    with open(os.path.join(args.input, "b.txt"), encoding="utf-8") as fh:
        text = fh.read()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "c.txt"), "w", encoding="utf-8") as fh:
        fh.write(text + "from c\n")
    print("c: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
