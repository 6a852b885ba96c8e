import argparse
import os

ap = argparse.ArgumentParser()
ap.add_argument("--out")
args = ap.parse_args()
n = int(os.environ.get("MANY_FILES", "1500"))
for i in range(n):
    with open(os.path.join(args.out, f"f{i:05d}.txt"), "w") as fh:
        fh.write(f"{i}\n")
print(f"wrote {n} files", flush=True)
