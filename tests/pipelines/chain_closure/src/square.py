"""Step b: read <numbers>/numbers.txt, write the squares to <out>/squares.txt."""

import argparse
import os


def record(log_path: str, step: str) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(step + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    record(args.log, "b")

    with open(os.path.join(args.numbers, "numbers.txt"), encoding="utf-8") as fh:
        numbers = [int(line) for line in fh if line.strip()]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "squares.txt"), "w", encoding="utf-8") as fh:
        for n in numbers:
            fh.write(f"{n * n}\n")
    print(f"b: squared {len(numbers)} numbers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
