"""featurize: count the fields of each cleaned reading."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--cleaned", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.cleaned, "readings.csv")) as f:
    widths = [str(len(line.split(","))) for line in f]
with open(os.path.join(args.out, "widths.txt"), "w") as f:
    f.write("\n".join(widths) + "\n")
