"""clean: copy the raw readings, dropping blank lines."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--raw", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "readings.csv"), "w") as out:
    for root, _, files in os.walk(args.raw):
        for name in sorted(files):
            with open(os.path.join(root, name)) as f:
                out.writelines(line for line in f if line.strip())
