"""hello (run by a CommandStep): write n numbered greetings to <out>/greetings.txt."""

import argparse
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("hello\n")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "greetings.txt"), "w", encoding="utf-8") as fh:
        for i in range(1, args.n + 1):
            fh.write(f"hello #{i}\n")
    print(f"hello: wrote {args.n} greetings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
