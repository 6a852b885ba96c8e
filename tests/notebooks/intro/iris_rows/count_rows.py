"""Counts the data rows of every CSV file of the input folder."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
for name in sorted(os.listdir(args.data)):
    with open(os.path.join(args.data, name)) as f:
        print(name, sum(1 for _ in f) - 1)
