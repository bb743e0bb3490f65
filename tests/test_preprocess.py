"""The canonical decode + resize rule (moleport.preprocess).

Measured against Pillow's ``Image.resize((224, 224), Image.BILINEAR)`` on the same centre
crop (Pillow 12.0, smooth-plus-noise test images): the maximum difference is 1 grey level
for every size tried, and 0-1.2 % of the values differ (300x200: 1.2 %, 600x450: 0.09 %,
224x224: identical). Pillow uses fixed-point coefficients; the canonical rule uses float64.
"""
import numpy as np
import pytest
from PIL import Image

from moleport.preprocess import (MIN_SIDE, ImageError, decode_rgb, load_image, normalize_batch,
                                 resize_canonical)
from moleport.spec import ModelSpec


def _natural(w, h, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 17.0 + c) * np.cos(yy / 23.0) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _save(tmp_path, img, name, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


@pytest.mark.parametrize("orientation,turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_applied(tmp_path, orientation, turn):
    a = _natural(60, 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path, Image.fromarray(a), "o.png", exif=exif)
    np.testing.assert_array_equal(decode_rgb(p), np.rot90(a, k=turn))  # k<0: clockwise


def test_rgb_alpha_over_white(tmp_path):
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., :3] = (100, 50, 200)
    rgba[:20, :, 3] = 128
    rgba[20:, :, 3] = 0
    out = decode_rgb(_save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png"))
    expect = [int(np.floor((c * 128 + 255 * 127) / 255 + 0.5)) for c in (100, 50, 200)]
    assert out[0, 0].tolist() == expect and out[30, 0].tolist() == [255, 255, 255]
    la = Image.fromarray(np.dstack([np.full((40, 40), 10, np.uint8), np.full((40, 40), 0, np.uint8)]), "LA")
    assert decode_rgb(_save(tmp_path, la, "la.png"))[0, 0].tolist() == [255, 255, 255]


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.fromarray(_natural(40, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p = _save(tmp_path, pal, "p.png")
    np.testing.assert_array_equal(decode_rgb(p), np.asarray(Image.open(p).convert("RGB")))
    idx = int(np.asarray(pal)[0, 0])
    pt = _save(tmp_path, pal, "pt.png", transparency=idx)
    out = decode_rgb(pt)
    assert out[0, 0].tolist() == [255, 255, 255]
    mask = np.asarray(pal) != idx
    np.testing.assert_array_equal(out[mask], np.asarray(pal.convert("RGB"))[mask])


def test_greyscale_bilevel_and_16bit(tmp_path):
    g = np.arange(40 * 40, dtype=np.uint8).reshape(40, 40)
    out = decode_rgb(_save(tmp_path, Image.fromarray(g, "L"), "g.png"))
    assert all(np.array_equal(out[..., c], g) for c in range(3))
    b = Image.fromarray(g > 100).convert("1")
    assert set(np.unique(decode_rgb(_save(tmp_path, b, "b.png")))) <= {0, 255}
    v = np.full((40, 40), 0x1234, dtype=np.uint16)
    v[0, 0] = 65535
    out16 = decode_rgb(_save(tmp_path, Image.fromarray(v), "i16.png"))
    assert out16[1, 1].tolist() == [0x12] * 3 and out16[0, 0].tolist() == [255] * 3


def test_cmyk_uses_pillow_conversion(tmp_path):
    cmyk = Image.fromarray(_natural(40, 40)).convert("CMYK")
    p = _save(tmp_path, cmyk, "c.jpg", quality=95)
    assert Image.open(p).mode == "CMYK"
    np.testing.assert_array_equal(decode_rgb(p), np.asarray(Image.open(p).convert("RGB")))


@pytest.mark.parametrize("w,h", [(300, 200), (600, 450), (224, 224), (150, 200), (1000, 700)])
def test_resize_matches_pillow_bilinear_within_one_level(w, h):
    a = _natural(w, h, seed=w)
    s = min(w, h)
    x0, y0 = (w - s) // 2, (h - s) // 2
    ref = np.asarray(Image.fromarray(a[y0:y0 + s, x0:x0 + s]).resize((224, 224), Image.BILINEAR)).astype(int)
    diff = np.abs(resize_canonical(a, 224).astype(int) - ref)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.03


def test_centre_crop_and_identity():
    a = _natural(300, 224)
    np.testing.assert_array_equal(resize_canonical(a, 224), a[:, 38:262])
    sq = _natural(224, 224)
    np.testing.assert_array_equal(resize_canonical(sq, 224), sq)


def test_load_image_shape_dtype_determinism(tmp_path):
    p = _save(tmp_path, Image.fromarray(_natural(200, 150)), "x.jpg", quality=90)
    a, b = load_image(p), load_image(p)
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert load_image(p, 64).shape == (64, 64, 3)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match=r"missing.png: file not found"):
        decode_rgb(tmp_path / "missing.png")
    small = _save(tmp_path, Image.fromarray(_natural(MIN_SIDE - 1, 100)), "s.png")
    with pytest.raises(ImageError, match=r"s.png: image too small"):
        decode_rgb(small)
    with pytest.raises(ValueError, match="expected HxWx3 uint8"):
        resize_canonical(np.zeros((10, 10), np.uint8))


def test_normalize_batch():
    spec = ModelSpec(architecture="mobilenet")
    x = np.zeros((2, 224, 224, 3), np.uint8)
    x[1] = 255
    t = normalize_batch(x, spec)
    assert tuple(t.shape) == (2, 3, 224, 224) and str(t.dtype) == "torch.float32"
    for c in range(3):
        assert float(t[0, c, 0, 0]) == pytest.approx(-spec.mean[c] / spec.std[c], abs=1e-6)
        assert float(t[1, c, 5, 5]) == pytest.approx((1 - spec.mean[c]) / spec.std[c], abs=1e-6)
    bgr = normalize_batch(np.dstack([np.full((4, 4), v, np.uint8) for v in (0, 0, 255)])[None], spec.replace(color_order="BGR"))
    assert float(bgr[0, 0, 0, 0]) == pytest.approx((1 - spec.mean[0]) / spec.std[0], abs=1e-6)


def test_tta_views_are_the_flips_and_quarter_turns_of_the_square():
    from moleport.preprocess import TTA_RULES, tta_views

    x = np.arange(2 * 5 * 5 * 3, dtype=np.uint8).reshape(2, 5, 5, 3)  # no symmetry: every view differs
    key = lambda v: v.tobytes()  # noqa: E731
    d8 = tta_views(x, "dihedral8")
    assert len({key(v) for v in d8}) == 8 and all(v.shape == x.shape and v.flags.c_contiguous for v in d8)
    # a group: the views of any view are the same 8 arrays
    assert {key(v) for v in tta_views(d8[3], "dihedral8")} == {key(v) for v in d8}
    f4 = tta_views(x, "flips4")
    assert {key(v) for v in f4} == {key(x), key(x[:, :, ::-1].copy()), key(x[:, ::-1].copy()),
                                    key(np.rot90(x, 2, axes=(1, 2)).copy())}
    assert {key(v) for v in f4} <= {key(v) for v in d8}
    assert [key(v) for v in tta_views(x, "flips2")] == [key(x), key(x[:, :, ::-1].copy())]
    assert set(TTA_RULES) == {"flips2", "flips4", "dihedral8"}
    with pytest.raises(ValueError, match="must be one of"):
        tta_views(x, "rot3")
    with pytest.raises(ValueError, match="square"):
        tta_views(x[:, :4], "flips2")
