"""b: fails with exit status 3 while mode.txt (next to this script) says "fail"; with "ok" it
writes a.txt plus one line to <out>/b.txt.

The executions log is written before the check, so a failed attempt shows up in it too.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("b\n")

    with open(os.path.join(HERE, "mode.txt"), encoding="utf-8") as fh:
        mode = fh.read().strip()
    print(f"b: mode is {mode!r}")
    if mode != "ok":
        # Write something first: a failed step's partial output must never be published.
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "partial.txt"), "w", encoding="utf-8") as fh:
            fh.write("written by a failing attempt\n")
        print(f"b: failing on purpose: b_src/mode.txt says {mode!r}", file=sys.stderr)
        return 3

    with open(os.path.join(args.input, "a.txt"), encoding="utf-8") as fh:
        text = fh.read()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "b.txt"), "w", encoding="utf-8") as fh:
        fh.write(text + "from b\n")
    print("b: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
