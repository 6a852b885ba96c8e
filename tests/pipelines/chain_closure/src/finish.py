"""Step d: no data input; runs after c only because of run_after. Writes <out>/done.txt."""

import argparse
import os


def record(log_path: str, step: str) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(step + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    record(args.log, "d")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "done.txt"), "w", encoding="utf-8") as fh:
        fh.write("d finished\n")
    print("d: finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
