"""Helpers for the data-stage tests: small, distinct image files written on the fly."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pixels(seed: int, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """Distinct random RGB pixels (w x h = size) for ``seed``."""
    w, h = size
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 40), **save_kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels(seed, size))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}[path.suffix.lower()]
    if fmt == "JPEG":
        save_kw.setdefault("quality", 95)
    img.save(path, format=fmt, **save_kw)
    return path


def png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def image_folder(root: Path, n_mel: int = 6, n_nev: int = 8, start: int = 0) -> Path:
    """root/melanoma/*.png and root/nevus/*.png with distinct pixels."""
    for i in range(n_mel):
        write_image(root / "melanoma" / f"m{i:03d}.png", start + i)
    for i in range(n_nev):
        write_image(root / "nevus" / f"n{i:03d}.png", start + 1000 + i)
    return root


def csv_folder(root: Path, rows: list[tuple[str, str | None, str]], ext: str = ".png") -> Path:
    """root/metadata.csv (image_id, lesion_id, label) and root/images/<image_id><ext>."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["image_id,lesion_id,label"]
    for k, (image_id, lesion, label) in enumerate(rows):
        write_image(root / "images" / f"{image_id}{ext}", 5000 + k)
        lines.append(f"{image_id},{lesion or ''},{label}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


