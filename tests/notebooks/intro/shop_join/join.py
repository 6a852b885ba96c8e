"""join: revenue per ranked product from the price list."""

import argparse
import csv
import os

parser = argparse.ArgumentParser()
parser.add_argument("--prices", required=True)
parser.add_argument("--ranked", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

prices_file = args.prices
if os.path.isdir(prices_file):
    prices_file = os.path.join(prices_file, os.listdir(prices_file)[0])
with open(prices_file, newline="") as f:
    prices = {row["product"]: float(row["price"]) for row in csv.DictReader(f)}
os.makedirs(args.out, exist_ok=True)
with (
    open(os.path.join(args.ranked, "ranked.csv")) as f,
    open(os.path.join(args.out, "revenue.csv"), "w") as out,
):
    for line in f:
        product, units = line.strip().split(",")
        out.write(f"{product},{int(units) * prices.get(product, 0.0):.2f}\n")
