"""Render images/*.svg to the PNG copies that the notebooks embed, or check they are fresh.

    python tools/render_images.py           # needs rsvg-convert (Debian: librsvg2-bin)
    python tools/render_images.py --check   # needs nothing but Pillow

The SVG files are the sources. JupyterLab 4 does not display SVG cell attachments
(jupyterlab/jupyterlab#10464), so the notebooks embed PNG renderings instead. Each PNG records
the SHA-256 of the SVG it was drawn from, so staleness is checked without rendering again
(renderers and fonts differ between machines; hashes do not).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image, PngImagePlugin

IMAGES = Path(__file__).resolve().parents[1] / "images"
KEY = "Source-SHA256"
ZOOM = "1.5"  # sharp on high-density screens; notebooks scale it to the cell's width


def source_hash(svg: Path) -> str:
    return hashlib.sha256(svg.read_bytes()).hexdigest()


def recorded_hash(png: Path) -> str | None:
    with Image.open(png) as image:
        return image.info.get(KEY)


def render(svg: Path) -> None:
    if shutil.which("rsvg-convert") is None:
        raise SystemExit("rsvg-convert not found: apt-get install librsvg2-bin (or brew install librsvg)")
    raw = subprocess.run(["rsvg-convert", "-z", ZOOM, "-b", "white", str(svg)],
                         check=True, capture_output=True).stdout
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, source_hash(svg))
    with Image.open(io.BytesIO(raw)) as image:
        image.convert("RGB").save(svg.with_suffix(".png"), pnginfo=info, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = [svg for svg in sorted(IMAGES.glob("*.svg"))
             if not svg.with_suffix(".png").exists()
             or recorded_hash(svg.with_suffix(".png")) != source_hash(svg)]
    if args.check:
        for svg in stale:
            print(f"stale: images/{svg.with_suffix('.png').name} (run `make images`)")
        return 1 if stale else 0
    for svg in stale:
        render(svg)
        print(f"wrote images/{svg.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
