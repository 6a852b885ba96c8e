"""summarize: how many readings have at least --threshold fields."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--cleaned", required=True)
parser.add_argument("--features", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--threshold", type=int, default=5)
args = parser.parse_args()

with open(os.path.join(args.features, "widths.txt")) as f:
    wide = sum(1 for line in f if line.strip() and int(line) >= args.threshold)
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "summary.txt"), "w") as f:
    f.write(f"wide readings: {wide}\n")
