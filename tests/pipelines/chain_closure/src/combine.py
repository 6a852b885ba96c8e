"""Step c: read numbers and squares, write their sums to <out>/result.json."""

import argparse
import json
import os


def record(log_path: str, step: str) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(step + "\n")


def read_ints(path: str) -> list[int]:
    with open(path, encoding="utf-8") as fh:
        return [int(line) for line in fh if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", required=True)
    parser.add_argument("--squares", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    record(args.log, "c")

    numbers = read_ints(os.path.join(args.numbers, "numbers.txt"))
    squares = read_ints(os.path.join(args.squares, "squares.txt"))
    if [n * n for n in numbers] != squares:
        raise SystemExit("c: squares do not match numbers")
    result = {"count": len(numbers), "sum": sum(numbers), "sum_of_squares": sum(squares)}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, sort_keys=True)
        fh.write("\n")
    print(f"c: {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
