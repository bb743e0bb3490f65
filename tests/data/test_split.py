import json
import shutil
from pathlib import Path
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from datahelpers import csv_folder, image_folder, pixels
from moleport.data.manifest import load_manifest
from moleport.data.sources import Record, open_source
from moleport.data.split import DataError, assign_splits, group_ids, lesion_subset, make_manifest, pixel_sha256


def _counts(manifest):
    return {s: dict(c) for s, c in manifest.counts().items()}


def test_stratified_ratios_exact_for_single_images(tmp_path):
    m = make_manifest(open_source(image_folder(tmp_path / "ds", n_mel=50, n_nev=70)), seed=0)
    assert _counts(m) == {"train": {"melanoma": 30, "nevus": 42}, "val": {"melanoma": 10, "nevus": 14},
                          "test": {"melanoma": 10, "nevus": 14}}
    assert len({it.sha256 for it in m.items}) == 120


def test_manifest_items_and_round_trip(tmp_path, tiny_folder):
    m = make_manifest(open_source(tiny_folder), seed=1)
    it = m.items[0]
    assert it.file.startswith("/") and it.source == "ds" and it.lesion_id is None
    assert it.sha256 == pixel_sha256(np.asarray(Image.open(it.file).convert("RGB")))
    m.save(tmp_path / "m.json")
    assert load_manifest(tmp_path / "m.json").sha256 == m.sha256


def test_deterministic_and_seed_dependent(tmp_path):
    recs = open_source(image_folder(tmp_path / "ds", n_mel=20, n_nev=30))
    a = make_manifest(recs, seed=0)
    b = make_manifest(list(reversed(recs)), seed=0)
    c = make_manifest(recs, seed=1)
    assert a.sha256 == b.sha256 and a.to_dict()["items"] == b.to_dict()["items"]
    assert a.sha256 != c.sha256 and _counts(a) == _counts(c)


def test_lesions_never_straddle_splits(tmp_path):
    rows = []
    for les in range(30):
        label = "melanoma" if les < 12 else "nevus"
        rows += [(f"img{les:02d}_{k}", f"L{les:02d}", label) for k in range(1 + les % 3)]
    m = make_manifest(open_source(csv_folder(tmp_path / "c", rows)), seed=0)
    splits = defaultdict(set)
    for it in m.items:
        splits[it.lesion_id].add(it.split)
    assert len(splits) == 30 and all(len(s) == 1 for s in splits.values())
    assert all(sum(c.values()) > 0 for c in m.counts().values())


def test_group_helpers_without_decoding():
    lesions = ["a", "a", "b", None, None, "c"]
    shas = ["h1", "h2", "h3", "h3", "h4", "h2"]  # image 3 duplicates lesion b, image 5 bridges a and c
    assert group_ids(lesions, shas) == [0, 0, 1, 1, 2, 0]
    assert group_ids(lesions) == [0, 0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, 400)
    groups = np.repeat(np.arange(400), sizes).tolist()
    labels = ["melanoma" if g % 4 == 0 else "nevus" for g in groups]
    out = assign_splits(labels, groups, seed=3)
    for g in set(groups):
        assert len({out[i] for i in range(len(groups)) if groups[i] == g}) == 1
    for lab in ("melanoma", "nevus"):
        idx = [i for i, x in enumerate(labels) if x == lab]
        frac = {s: sum(out[i] == s for i in idx) / len(idx) for s in ("train", "val", "test")}
        assert abs(frac["train"] - 0.6) < 0.02 and abs(frac["val"] - 0.2) < 0.02
    with pytest.raises(DataError, match="mixes labels"):
        assign_splits(["melanoma", "nevus"], [0, 0])


def test_duplicates_within_class_dropped_and_reported(tmp_path, tiny_folder):
    shutil.copy(tiny_folder / "nevus" / "n000.png", tiny_folder / "nevus" / "zz_copy.png")
    Image.fromarray(pixels(1000)).save(tiny_folder / "nevus" / "zz_reencoded.png", compress_level=9)
    report = tmp_path / "r.json"
    m = make_manifest(open_source(tiny_folder), report_path=report)
    files = [it.file for it in m.items]
    assert len(m.items) == 14 and not any("zz_" in f for f in files)
    rep = json.loads(report.read_text())
    assert sorted(d["file"].rsplit("/", 1)[1] for d in rep["duplicates_dropped"]) == ["zz_copy.png", "zz_reencoded.png"]
    assert all(d["kept"].endswith("n000.png") for d in rep["duplicates_dropped"])
    with pytest.raises(DataError, match=r"duplicate .*zz_copy.png \(same pixels as .*n000.png\)"):
        make_manifest(open_source(tiny_folder), duplicates="refuse")


def test_duplicates_across_classes(tmp_path, tiny_folder):
    shutil.copy(tiny_folder / "nevus" / "n001.png", tiny_folder / "melanoma" / "dup.png")
    with pytest.raises(DataError, match=r"label conflict .*dup.png.*n001.png"):
        make_manifest(open_source(tiny_folder))
    report = tmp_path / "r.json"
    m = make_manifest(open_source(tiny_folder), skip_bad=True, report_path=report)
    assert not any(it.file.endswith(("dup.png", "n001.png")) for it in m.items) and len(m.items) == 13
    conflicts = json.loads(report.read_text())["label_conflicts"]
    assert len(conflicts) == 1 and conflicts[0]["labels"] == ["melanoma", "nevus"]


def test_lesion_with_two_labels_is_an_error(tmp_path):
    root = csv_folder(tmp_path / "c", [("a", "L1", "melanoma"), ("b", "L1", "nevus"), ("c", "L2", "melanoma"),
                                       ("d", "L3", "nevus")])
    with pytest.raises(DataError, match="one lesion labelled both"):
        make_manifest(open_source(root))


def test_bad_arguments(tiny_folder):
    recs = open_source(tiny_folder)
    with pytest.raises(ValueError, match="ratios"):
        make_manifest(recs, ratios=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="duplicates"):
        make_manifest(recs, duplicates="keep")
    with pytest.raises(DataError, match="no usable images"):
        make_manifest([Record(tiny_folder / "missing.png", "nevus")], skip_bad=True)


def test_lesion_subset_keeps_whole_lesions_and_the_class_ratio():
    records = [Record(Path(f"m{i}.jpg"), "melanoma", f"LM{i // 2}") for i in range(40)] + \
              [Record(Path(f"n{i}.jpg"), "nevus", f"LN{i // 3}") for i in range(120)]
    sub = lesion_subset(records, 40, seed=0)
    by_lesion = defaultdict(int)
    for r in sub:
        by_lesion[r.lesion_id] += 1
    assert all(n == (2 if k.startswith("LM") else 3) for k, n in by_lesion.items())  # no lesion cut in two
    mel = sum(r.label == "melanoma" for r in sub)
    assert mel == 10 and 30 <= len(sub) - mel <= 32  # 1:3 as in the whole set, rounded up to whole lesions
    assert lesion_subset(records, 40, seed=0) == sub and lesion_subset(records, 40, seed=1) != sub
    assert lesion_subset(records, None) == records and lesion_subset(records, 10_000) == records
