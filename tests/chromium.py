"""Render an HTML file in headless Chromium (Debian's `chromium`, installed by scripts/setup --all)
and read back what shows: the DOM text after its scripts ran, and a screenshot's pixels."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: scripts/setup --all installs it (apt-get)")
    return exe


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def dom_text(html: Path, tmp: Path) -> tuple[str, str]:
    """(the DOM Chromium holds after the page's scripts ran, its visible text, spaces collapsed)."""
    dom = _run(["--dump-dom", html.as_uri()], tmp / "profile-dom").stdout
    parser = _Text()
    parser.feed(dom)
    return dom, " ".join(" ".join(parser.parts).split())


def screenshot(html: Path, tmp: Path, size: str = "1000,1200", scale: float = 0.5) -> Path:
    """A screenshot of the page in a `size` CSS-pixel window; `scale` < 1 keeps the PNG small
    (the decoder below is pure Python)."""
    png = tmp / "screenshot.png"
    args = [f"--screenshot={png}", f"--window-size={size}", f"--force-device-scale-factor={scale}"]
    _run([*args, html.as_uri()], tmp / "profile-shot")
    assert png.is_file()
    return png


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of pixels as bytes) of an 8-bit RGB / RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i : i + 3]) for r in rows for i in range(0, len(r), bpp)]


def colour_census(path: Path) -> dict[bytes, int]:
    """How many pixels of each RGB colour the screenshot has."""
    _, _, pixels = png_pixels(path)
    counts: dict[bytes, int] = {}
    for px in pixels:
        counts[px] = counts.get(px, 0) + 1
    return counts
