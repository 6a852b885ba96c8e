import argparse
import os

ap = argparse.ArgumentParser()
ap.add_argument("--files")
ap.add_argument("--out")
args = ap.parse_args()
names = os.listdir(args.files)
with open(os.path.join(args.out, "count.txt"), "w") as fh:
    fh.write(str(len(names)))
