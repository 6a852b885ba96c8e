"""Read every file of an input folder; write <out>/listing.json (relative path, size, sha256)."""

import argparse
import hashlib
import json
import os


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--step", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write(args.step + "\n")

    if not os.path.isdir(args.input):
        raise SystemExit(f"{args.step}: input is not a folder: {args.input}")
    files = []
    for dirpath, dirnames, filenames in os.walk(args.input):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                data = fh.read()
            rel = os.path.relpath(full, args.input).replace(os.sep, "/")
            files.append(
                {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
    files.sort(key=lambda f: f["path"])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "listing.json"), "w", encoding="utf-8") as fh:
        json.dump({"step": args.step, "files": files}, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(f"{args.step}: {len(files)} files: {', '.join(f['path'] for f in files)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
