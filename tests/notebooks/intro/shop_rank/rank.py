"""rank: order the products by units sold."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--totals", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

with open(os.path.join(args.totals, "totals.csv")) as f:
    rows = [line.strip().split(",") for line in f if line.strip()]
rows.sort(key=lambda r: -int(r[1]))
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "ranked.csv"), "w") as f:
    f.writelines(f"{p},{n}\n" for p, n in rows)
