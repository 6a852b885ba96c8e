"""train: the command of a CommandStep (`python train.py --epochs N --tag TEXT`)."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--tag", default="")
args = parser.parse_args()
for epoch in range(args.epochs):
    print(f"{args.tag}: epoch {epoch + 1}/{args.epochs}")
