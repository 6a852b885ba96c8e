"""Data preparation step: read the training images, normalise them, write a features table.

Input:  a folder of plain-text PGM images ("P2"), one sub-folder per class
        (horizontal/, vertical/, diagonal/); files directly in the folder are labelled by the
        part of their name before the first "_".
Each image is scaled to 0..1 (pixel / maxval) and summarised by four features that do not depend
on where a stroke sits: the overall mean, and the brightest row, column and (wrapped) diagonal,
each as a mean over its pixels.

Output: <output>/features.csv   one row per image: image, label, mean, row_peak, col_peak, diag_peak
        <output>/manifest.json  image size, number of images per label, feature names
"""

from __future__ import annotations

import argparse
import csv
import json
import os


def find_images(root: str) -> list[str]:
    """Relative POSIX paths of every .pgm file under root, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(".pgm"):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def read_pgm(path: str) -> tuple[int, int, int, list[int]]:
    """Parse a plain PGM file: returns width, height, maxval and the pixel values."""
    tokens: list[str] = []
    with open(path, encoding="ascii") as fh:
        for line in fh:
            line = line.split("#", 1)[0]
            tokens.extend(line.split())
    if not tokens or tokens[0] != "P2":
        raise ValueError(f"{path}: not a plain PGM (P2) file")
    width, height, maxval = int(tokens[1]), int(tokens[2]), int(tokens[3])
    pixels = [int(t) for t in tokens[4:]]
    if len(pixels) != width * height:
        raise ValueError(f"{path}: expected {width * height} pixels, found {len(pixels)}")
    return width, height, maxval, pixels


def label_of(rel_path: str) -> str:
    parts = rel_path.split("/")
    if len(parts) > 1:
        return parts[-2]
    return parts[0].split("_", 1)[0]


FEATURES = ("mean", "row_peak", "col_peak", "diag_peak")


def features_of(values: list[float], width: int, height: int) -> list[float]:
    """The four features of one normalised image (values in row-major order)."""
    rows = [values[r * width : (r + 1) * width] for r in range(height)]
    cols = [[rows[r][c] for r in range(height)] for c in range(width)]
    n = min(width, height)
    diags = [[rows[i][(i + k) % width] for i in range(n)] for k in range(width)]
    return [
        sum(values) / len(values),
        max(sum(r) / len(r) for r in rows),
        max(sum(c) / len(c) for c in cols),
        max(sum(d) / len(d) for d in diags),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="Normalise PGM images into a features table.")
    parser.add_argument("--input", required=True, help="folder holding the images")
    parser.add_argument("--output", required=True, help="folder to write features.csv into")
    args = parser.parse_args()

    images = find_images(args.input)
    if not images:
        raise SystemExit(f"prepare: no .pgm images found under {args.input}")
    print(f"prepare: found {len(images)} images")

    rows = []
    size = None
    for rel in images:
        width, height, maxval, pixels = read_pgm(os.path.join(args.input, rel))
        if size is None:
            size = (width, height)
        elif size != (width, height):
            raise SystemExit(f"prepare: {rel} is {width}x{height}, expected {size[0]}x{size[1]}")
        normalised = [p / maxval for p in pixels]
        rows.append((rel, label_of(rel), features_of(normalised, width, height)))

    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "features.csv"), "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "label", *FEATURES])
        for rel, label, values in rows:
            writer.writerow([rel, label] + [f"{v:.4f}" for v in values])

    counts: dict[str, int] = {}
    for _, label, _ in rows:
        counts[label] = counts.get(label, 0) + 1
    manifest = {
        "images": len(rows),
        "width": size[0],
        "height": size[1],
        "labels": dict(sorted(counts.items())),
        "features": list(FEATURES),
    }
    with open(os.path.join(args.output, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
    for label, n in sorted(counts.items()):
        print(f"prepare: {label}: {n} images")
    print(f"prepare: wrote features.csv ({len(rows)} rows, {len(FEATURES)} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
