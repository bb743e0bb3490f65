"""Canonical preprocessing: from an image file to the model's 224x224 RGB uint8 input.

The rule is written so that it can be re-implemented bit-for-bit (within ±1 grey
level) in Java (android_demo/core) and JavaScript (web_demo). It is the reference;
PIL is used only to *decode* files.

Decoding (``decode_rgb``)
    1. The file is decoded with Pillow; EXIF orientation is applied (``exif_transpose``).
    2. Colour modes become 8-bit RGB by this rule:
       - RGB: unchanged.
       - Modes with alpha (RGBA, LA, PA, P/L/RGB with a transparency key): alpha-composited
         over **white**: ``out = round((c*a + 255*(255-a)) / 255)``.
       - L / 1 (greyscale, bilevel): the grey value is copied to R, G and B.
       - I;16 / I (16/32-bit greyscale): ``v >> 8`` for 16-bit ranges (values clipped to 0..65535), then as L.
       - CMYK, YCbCr, LAB, HSV, P (palette) without transparency: Pillow's ``convert("RGB")``.
    3. Images whose shorter side is under 32 px, larger than ``MAX_PIXELS`` (a decompression
       bomb), truncated or undecodable raise :class:`ImageError` naming the file.

Resizing (``resize_canonical``; name ``center-square-crop+triangle-antialias-v1``)
    1. Centre square crop: ``s = min(W, H)``, ``x0 = (W - s) // 2``, ``y0 = (H - s) // 2``.
    2. Separable resize of the ``s x s`` crop to ``N x N`` (N = 224) with a triangle
       (bilinear) filter widened by the downscale factor (antialiasing), as Pillow's BILINEAR:
       ``scale = s / N``, ``fs = max(scale, 1)``; for output index ``i``:
       ``c = (i + 0.5) * scale``, ``lo = max(floor(c - fs + 0.5), 0)``,
       ``hi = min(floor(c + fs + 0.5), s)``; for ``j`` in ``[lo, hi)``:
       ``w_j = max(0, 1 - |(j - c + 0.5) / fs|)``, normalised to sum 1.
    3. First the horizontal pass (along x), its result rounded to uint8, then the vertical
       pass, rounded to uint8. Rounding is ``floor(v + 0.5)`` clipped to [0, 255]; all
       arithmetic in float64, each output summed over its taps in increasing input index
       starting from 0.0 (``acc = acc + v_j * w_j``), which makes the ports bit-exact.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from moleport.procstate import attributes
from moleport.spec import SHADES_OF_GRAY, TTA_RULES, ModelSpec

#: Largest image accepted (pixels). Anything above is treated as a decompression bomb.
MAX_PIXELS = 64_000_000
MIN_SIDE = 32


class ImageError(ValueError):
    """An image file cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _open_checked(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageError(path, "file not found")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with (attributes(Image, MAX_IMAGE_PIXELS=MAX_PIXELS), attributes(ImageFile, LOAD_TRUNCATED_IMAGES=False),
              warnings.catch_warnings()):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(path, f"decompression bomb refused (more than {MAX_PIXELS} pixels): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(path, "not an image (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"corrupt or truncated image ({exc})") from exc
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(path, f"decompression bomb refused ({img.width}x{img.height} pixels)")
    return img


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        a = rgba[..., 3:4]
        out = (rgba[..., :3] * a + 255.0 * (255.0 - a)) / 255.0
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        v = np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8
        grey = v.astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("L", "1"):
        grey = np.asarray(img.convert("L"), dtype=np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.floor(np.asarray(img, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an HxWx3 uint8 RGB array (EXIF orientation applied)."""
    p = Path(path)
    img = _open_checked(p)
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(p, f"bad EXIF data ({exc})") from exc
    rgb = _to_rgb(img)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(p, f"image too small ({w}x{h}); the shorter side must be at least {MIN_SIDE} px")
    return np.ascontiguousarray(rgb)


@functools.lru_cache(maxsize=64)
def triangle_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Filter taps of one axis: ``(idx, wt)``, both (out_size, K).

    Output ``i`` is ``sum_k in[idx[i, k]] * wt[i, k]`` for k = 0..K-1 in order, i.e. input
    ``lo, lo+1, ... hi-1`` (shorter rows are padded with weight 0, which adds exactly 0).
    This summation order is part of the rule: the Java and JavaScript ports use it too.
    """
    scale = in_size / out_size
    fs = max(scale, 1.0)
    rows: list[tuple[int, np.ndarray]] = []
    for i in range(out_size):
        c = (i + 0.5) * scale
        lo = max(int(np.floor(c - fs + 0.5)), 0)
        hi = min(int(np.floor(c + fs + 0.5)), in_size)
        j = np.arange(lo, hi, dtype=np.float64)
        k = np.maximum(0.0, 1.0 - np.abs((j - c + 0.5) / fs))
        total = k.sum()
        if total <= 0:
            raise ValueError(f"degenerate filter for {in_size}->{out_size} at {i}")
        rows.append((lo, k / total))
    width = max(len(k) for _, k in rows)
    idx = np.zeros((out_size, width), dtype=np.intp)
    wt = np.zeros((out_size, width), dtype=np.float64)
    for i, (lo, k) in enumerate(rows):
        idx[i, :] = lo
        idx[i, : len(k)] = np.arange(lo, lo + len(k))
        wt[i, : len(k)] = k
    idx.setflags(write=False)
    wt.setflags(write=False)
    return idx, wt


def triangle_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) dense matrix of the same filter (for inspection and tests)."""
    idx, wt = triangle_taps(in_size, out_size)
    w = np.zeros((out_size, in_size), dtype=np.float64)
    np.add.at(w, (np.arange(out_size)[:, None], idx), wt)
    return w


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _filter_axis(a: np.ndarray, idx: np.ndarray, wt: np.ndarray, axis: int) -> np.ndarray:
    """Apply taps along ``axis`` (0 or 1) of an HxWx3 float64 array, summing in tap order."""
    acc = None
    for k in range(idx.shape[1]):
        if axis == 1:
            term = a[:, idx[:, k], :] * wt[None, :, k, None]
        else:
            term = a[idx[:, k], :, :] * wt[:, k, None, None]
        acc = term if acc is None else acc + term
    return acc


def resize_canonical(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """Centre-square-crop and resize an HxWx3 uint8 array to size x size x 3 uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8, got shape {rgb.shape} dtype {rgb.dtype}")
    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = rgb[y0 : y0 + s, x0 : x0 + s].astype(np.float64)
    idx, wt = triangle_taps(s, size)
    horiz = _round_u8(_filter_axis(crop, idx, wt, axis=1)).astype(np.float64)
    return _round_u8(_filter_axis(horiz, idx, wt, axis=0))


def load_image(path: str | Path, size: int = 224) -> np.ndarray:
    """The canonical model input for one file: size x size x 3 uint8 RGB."""
    return resize_canonical(decode_rgb(path), size)


def shades_of_gray(x01, power: int = 6, eps: float = 1e-6):
    """Shades-of-Gray colour constancy (rule ``shades-of-gray-p6``) on float NCHW pixels in 0..1.

    Per image: illuminant ``e_c = (mean over pixels of x_c ** 6) ** (1/6)``, ``e = e / ||e||_2``,
    ``out_c = clip(x_c / (max(e_c, eps) * sqrt(3)), 0, 1)``. A grey illuminant leaves pixels
    unchanged. Applied to the canonical 224x224 image after decoding/resizing and before the
    spec's mean/std, in training, in the PyTorch reference and (re-implemented) inside every
    exported graph, so apps feed raw pixels as before.
    """
    import torch

    e = x01.pow(power).mean(dim=(2, 3), keepdim=True).pow(1.0 / power)
    e = e / torch.sqrt((e * e).sum(dim=1, keepdim=True)).clamp_min(eps)
    return (x01 / (e.clamp_min(eps) * 3.0 ** 0.5)).clamp(0.0, 1.0)


def normalize_batch(batch_u8, spec: ModelSpec):
    """uint8 NHWC (numpy or torch) -> float32 NCHW torch tensor normalised by ``spec``
    (colour order, then the spec's colour constancy if any, then mean/std).

    Works on whatever device the input tensor lives on (CPU or CUDA).
    """
    import torch

    x = torch.as_tensor(batch_u8)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected NHWC uint8 batch with 3 channels, got shape {tuple(x.shape)}")
    if spec.color_order == "BGR":
        x = x.flip(-1)
    x = x.permute(0, 3, 1, 2).float() / 255.0  # not in place: a float input may be the caller's tensor
    if spec.color_constancy == SHADES_OF_GRAY:
        x = shades_of_gray(x)
    elif spec.color_constancy is not None:  # ModelSpec validates names; this guards a new rule left unwired
        raise ValueError(f"colour constancy {spec.color_constancy!r} is not implemented by moleport.preprocess")
    mean = torch.tensor(spec.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def melanoma_probability(logits, spec: ModelSpec):
    """P(melanoma) from the model's logits: ``sigmoid(logit / spec.temperature)`` (any shape, torch)."""
    import torch

    return torch.sigmoid(logits / spec.temperature)


# Test-time augmentation (spec.TTA_RULES): every view is an exact symmetry of the square pixel grid (a flip or a
# quarter turn), so it commutes with this module's colour constancy and mean/std normalisation, and the views of the
# canonical uint8 image are the views of the model's input.


def tta_views(batch_nhwc, rule: str) -> list:
    """The views ``rule`` averages over, of an N x H x W x C batch (numpy or torch, returned as the same kind):
    flips2 = identity and left-right flip; flips4 = those and their up-down flips (the half turn among them);
    dihedral8 = the 4 quarter turns and the left-right flip of each (the whole dihedral group of the square)."""
    if rule not in TTA_RULES:
        raise ValueError(f"test-time augmentation rule must be one of {TTA_RULES}, got {rule!r}")
    if not hasattr(batch_nhwc, "numpy"):  # numpy (or array-like)
        x = np.asarray(batch_nhwc)
        rot, flip, done = (lambda t, k: np.rot90(t, k, axes=(1, 2))), (lambda t, a: np.flip(t, a)), np.ascontiguousarray
    else:
        x = batch_nhwc
        rot, flip, done = (lambda t, k: t.rot90(k, (1, 2))), (lambda t, a: t.flip(a)), (lambda t: t.contiguous())
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"test-time augmentation needs square N x H x W x C images, got shape {tuple(x.shape)}")
    if rule == "flips2":
        turns = [x]
    elif rule == "flips4":
        turns = [x, flip(x, 1)]
    else:
        turns = [rot(x, k) if k else x for k in range(4)]
    return [done(v) for t in turns for v in (t, flip(t, 2))]


def view_logits(logit_fn, batch_nhwc, spec: ModelSpec):
    """``logit_fn`` (uint8 NHWC batch -> N logits, torch) of ``batch_nhwc``; with ``spec.tta``, the mean of its
    logits over the rule's views (the PyTorch side of an in-graph test-time augmentation)."""
    import torch

    if spec.tta is None:
        return logit_fn(batch_nhwc)
    return torch.stack([logit_fn(v).reshape(-1) for v in tta_views(batch_nhwc, spec.tta)]).mean(dim=0)
