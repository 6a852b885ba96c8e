"""shout (run by a CommandStep given as one string): print the word in capitals."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--word", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("shout\n")
    print(f"shout: {args.word.upper()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
