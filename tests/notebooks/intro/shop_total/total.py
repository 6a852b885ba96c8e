"""total: sum the sales per product."""

import argparse
import csv
import os
from collections import Counter

parser = argparse.ArgumentParser()
parser.add_argument("--sales", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

totals = Counter()
with open(args.sales, newline="") as f:
    for row in csv.DictReader(f):
        totals[row["product"]] += int(row["units"])
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "totals.csv"), "w") as f:
    f.writelines(f"{p},{n}\n" for p, n in sorted(totals.items()))
