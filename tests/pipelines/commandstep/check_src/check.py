"""check: count the greetings hello wrote; write <out>/check.json."""

import argparse
import json
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--greetings", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("check\n")
    with open(os.path.join(args.greetings, "greetings.txt"), encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    result = {
        "greetings": len(lines),
        "first": lines[0] if lines else None,
        "last": lines[-1] if lines else None,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "check.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, sort_keys=True)
        fh.write("\n")
    print(f"check: {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
