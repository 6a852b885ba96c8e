"""Generate the sample's tiny training images (deterministic).

Writes small greyscale images in the plain-text PGM format ("P2") into one folder per class:

    data/train-images/horizontal/img_00.pgm
    data/train-images/vertical/img_00.pgm
    data/train-images/diagonal/img_00.pgm

Each image is a dark background with one bright stroke (a row, a column or a diagonal) at a varying
position, plus a little noise from a seeded generator, so running this script again gives
byte-identical files. The committed images were made with the defaults:

    python tools/make_images.py
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CLASSES = ("horizontal", "vertical", "diagonal")
MAXVAL = 255


def stroke_mask(kind: str, size: int, offset: int) -> list[list[bool]]:
    """True where the stroke is. `offset` shifts the stroke across the image."""
    mask = [[False] * size for _ in range(size)]
    for i in range(size):
        if kind == "horizontal":
            mask[offset % size][i] = True
        elif kind == "vertical":
            mask[i][offset % size] = True
        elif kind == "diagonal":
            # a diagonal that wraps around, shifted by `offset`
            mask[i][(i + offset) % size] = True
        else:
            raise ValueError(f"unknown class {kind!r}")
    return mask


def make_image(kind: str, size: int, offset: int, rng: random.Random) -> list[list[int]]:
    mask = stroke_mask(kind, size, offset)
    pixels = []
    for row in mask:
        pixels.append([rng.randint(110, MAXVAL) if on else rng.randint(0, 140) for on in row])
    return pixels


def to_pgm(pixels: list[list[int]], comment: str) -> str:
    height = len(pixels)
    width = len(pixels[0])
    lines = ["P2", f"# {comment}", f"{width} {height}", str(MAXVAL)]
    lines += [" ".join(f"{v:3d}" for v in row) for row in pixels]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(here / "data" / "train-images"))
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20211021)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    out = Path(args.out)
    count = 0
    for kind in CLASSES:
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(args.per_class):
            pixels = make_image(kind, args.size, offset=i, rng=rng)
            text = to_pgm(pixels, f"{kind} stroke, offset {i % args.size}")
            (folder / f"img_{i:02d}.pgm").write_text(text, encoding="ascii", newline="\n")
            count += 1
    print(f"wrote {count} images of {args.size}x{args.size} pixels to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
