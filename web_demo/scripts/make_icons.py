"""Draw the app icons (public/icons/icon-192.png, icon-512.png): a mole-like dot in a crop square.

Run once with the project venv; the PNGs are committed. Usage: python web_demo/scripts/make_icons.py
"""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "public" / "icons"


def icon(size: int) -> Image.Image:
    k = 4  # supersample, then downscale for smooth edges
    s = size * k
    img = Image.new("RGB", (s, s), (29, 53, 87))
    d = ImageDraw.Draw(img)
    d.ellipse([s * 0.22, s * 0.22, s * 0.78, s * 0.78], fill=(241, 214, 190))
    d.ellipse([s * 0.38, s * 0.36, s * 0.62, s * 0.62], fill=(92, 58, 40))
    m, w = s * 0.16, max(2 * k, s // 40)
    d.rectangle([m, m, s - m, s - m], outline=(255, 209, 102), width=w)
    return img.resize((size, size), Image.LANCZOS)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        icon(size).save(OUT / f"icon-{size}.png", optimize=True)
        print(OUT / f"icon-{size}.png")
