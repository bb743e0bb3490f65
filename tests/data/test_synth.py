import csv

import numpy as np
import pytest

from moleport.data import synth
from moleport.data.sources import open_source
from moleport.preprocess import decode_rgb


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    a = synth.generate(tmp_path / "a", 12, seed=3)
    b = synth.generate(tmp_path / "b", 12, seed=3)
    fa, fb = _files(a.parent), _files(b.parent)
    assert len(fa) == 13 and fa == fb


def test_other_seed_gives_other_images(tmp_path):
    a = _files(synth.generate(tmp_path / "a", 6, seed=0).parent)
    b = _files(synth.generate(tmp_path / "b", 6, seed=1).parent)
    assert all(a[k] != b[k] for k in a if k.endswith(".png"))


def test_generation_is_order_independent(tmp_path):
    """Image i depends only on (seed, i, label): a bigger dataset starts with the same images."""
    synth.generate(tmp_path / "small", 5, seed=7, melanoma_fraction=0.4)
    synth.generate(tmp_path / "big", 20, seed=7, melanoma_fraction=0.4)
    labels = synth.synth_labels(5, 7, 0.4)
    for i, lab in enumerate(labels):
        got = decode_rgb(tmp_path / "small" / "images" / f"{synth.image_id(i)}.png")
        assert np.array_equal(got, synth.render(7, i, lab))


@pytest.mark.parametrize("n,expected", [(8598, 3638), (10, 4), (600, 254), (1, 0), (0, 0)])
def test_class_ratio(n, expected):
    labels = synth.synth_labels(n, seed=0)
    assert len(labels) == n and labels.count("melanoma") == expected
    assert labels == synth.synth_labels(n, seed=0)


def test_metadata_and_images_are_valid(tmp_path):
    csv_path = synth.generate(tmp_path / "s", 10, seed=0)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["image_id"] for r in rows] == [synth.image_id(i) for i in range(10)]
    assert {r["label"] for r in rows} <= {"melanoma", "nevus"}
    assert len({r["lesion_id"] for r in rows}) == 10
    for r in rows:
        rgb = decode_rgb(tmp_path / "s" / "images" / f"{r['image_id']}.png")
        assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8
        assert 20 < rgb.mean() < 235 and rgb.std() > 10  # not blank
    recs = open_source(tmp_path / "s")
    assert [r.label for r in recs] == [r["label"] for r in rows]


def test_size_argument_and_bad_args(tmp_path):
    synth.generate(tmp_path / "s", 2, seed=0, size=64)
    assert decode_rgb(tmp_path / "s" / "images" / "SYN_000000.png").shape == (64, 64, 3)
    with pytest.raises(ValueError, match="melanoma_fraction"):
        synth.generate(tmp_path / "x", 2, seed=0, melanoma_fraction=1.5)
    with pytest.raises(ValueError, match="label"):
        synth.render(0, 0, "keratosis")


def test_classes_overlap_but_differ():
    """ABCD cues: melanomas are more atypical, larger and more colourful, yet the classes overlap."""
    rng = np.random.default_rng(0)
    mel = [synth.draw_params(rng, "melanoma") for _ in range(800)]
    nev = [synth.draw_params(rng, "nevus") for _ in range(800)]
    t_mel, t_nev = np.array([p.atypia for p in mel]), np.array([p.atypia for p in nev])
    assert t_mel.mean() - t_nev.mean() > 0.35
    assert np.mean([p.radius for p in mel]) > np.mean([p.radius for p in nev]) + 0.05
    assert np.mean([len(p.extras) for p in mel]) > 2 * np.mean([len(p.extras) for p in nev])
    # overlap: the best single threshold on the hidden atypia is right 80-95 % of the time
    best = max(((t_mel >= c).sum() + (t_nev < c).sum()) / 1600 for c in np.linspace(0, 1, 101))
    assert 0.80 < best < 0.95
    assert (t_nev > 0.6).any() and (t_mel < 0.4).any()  # atypical nevi, banal-looking melanomas


def test_pixels_carry_a_noisy_signal():
    """Dark/blue-grey lesion pixels: higher for melanoma on average, but not a perfect separator."""
    labels = synth.synth_labels(80, seed=11)

    def feature(img):
        f = img.astype(float)
        dark = f.sum(axis=2) < 240
        blue = (f[..., 2] > f[..., 0] - 5) & (f[..., 2] < 190)
        return (dark | blue)[30:194, 30:194].mean()

    x = np.array([feature(synth.render(11, i, lab)) for i, lab in enumerate(labels)])
    y = np.array([lab == "melanoma" for lab in labels])
    auc = np.mean([xm > xn for xm in x[y] for xn in x[~y]])
    assert 0.65 < auc < 0.99
