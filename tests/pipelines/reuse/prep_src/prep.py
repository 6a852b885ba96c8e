"""prep: read every CSV of the input folder (name,value rows), write <out>/prepped.csv sorted by name."""

import argparse
import csv
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("prep\n")

    rows = []
    for name in sorted(os.listdir(args.input)):
        if name.endswith(".csv"):
            with open(os.path.join(args.input, name), newline="", encoding="utf-8") as fh:
                rows += [(r["name"], int(r["value"])) for r in csv.DictReader(fh)]
    rows.sort()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "prepped.csv"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write("name,value\n")
        fh.writelines(f"{n},{v}\n" for n, v in rows)
    print(f"prep: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
