from collections import Counter

import pytest

from datahelpers import csv_folder, write_image
from moleport.data.sources import Record, SourceError, open_source, scan_source


def test_csv_source(tmp_path):
    root = csv_folder(tmp_path / "ham", [("ISIC_1", "L1", "melanoma"), ("ISIC_2", "L1", "melanoma"),
                                         ("ISIC_3", None, "nevus"), ("ISIC_4", "L3", "nv")], ext=".jpg")
    recs = open_source(root)
    assert [r.path.name for r in recs] == ["ISIC_1.jpg", "ISIC_2.jpg", "ISIC_3.jpg", "ISIC_4.jpg"]
    assert [r.label for r in recs] == ["melanoma", "melanoma", "nevus", "nevus"]
    assert [r.lesion_id for r in recs] == ["L1", "L1", None, "L3"]
    assert all(r.path.is_absolute() and r.source == "ham" for r in recs)
    assert isinstance(recs[0], Record)


def test_csv_extensions_and_images_beside_csv(tmp_path):
    root = tmp_path / "flat"
    write_image(root / "a.PNG", 1)
    write_image(root / "b.jpeg", 2)
    write_image(root / "c.jpg", 3)
    (root / "metadata.csv").write_text("image_id,label\na,melanoma\nb,nevus\nc.jpg,Nevus\n")
    recs = open_source(root)
    assert [r.path.name for r in recs] == ["a.PNG", "b.jpeg", "c.jpg"]
    assert [r.lesion_id for r in recs] == [None, None, None]


def test_csv_missing_image_names_the_file(tmp_path):
    root = csv_folder(tmp_path / "d", [("x1", None, "melanoma"), ("x2", None, "nevus"), ("x3", None, "nevus")])
    (root / "images" / "x2.png").unlink()
    with pytest.raises(SourceError, match=r"x2.*not found"):
        open_source(root)
    scan = scan_source(root)
    assert len(scan.records) == 2
    assert [p.path for p in scan.problems] == [str((root / "images" / "x2").resolve())]
    assert "metadata.csv:3" in scan.problems[0].problem


def test_csv_unknown_label_and_missing_column(tmp_path):
    root = csv_folder(tmp_path / "d", [("x1", None, "melanoma"), ("x2", None, "keratosis")])
    with pytest.raises(SourceError, match=r"metadata.csv:3: unknown label 'keratosis'"):
        open_source(root)
    (root / "metadata.csv").write_text("image,label\nx1,melanoma\n")
    with pytest.raises(SourceError, match=r"metadata.csv: missing column\(s\) \['image_id'\]"):
        open_source(root)


def test_imagefolder_nested_case_insensitive(tmp_path):
    root = tmp_path / "isic"
    write_image(root / "Train" / "MELANOMA" / "a.jpg", 1)
    write_image(root / "Train" / "Nevus" / "b.PNG", 2)
    write_image(root / "test" / "melanoma" / "deeper" / "c.png", 3)
    write_image(root / "test" / "seborrheic_keratosis" / "d.jpg", 4)  # other class: ignored
    write_image(root / "e.jpg", 5)  # outside any class folder: ignored
    (root / "Train" / "Nevus" / "notes.txt").write_text("not an image")
    (root / "Train" / "Nevus" / ".hidden.jpg").write_bytes(b"")
    recs = open_source(root)
    got = {r.path.relative_to(root.resolve()).as_posix(): r.label for r in recs}
    assert got == {"Train/MELANOMA/a.jpg": "melanoma", "Train/Nevus/b.PNG": "nevus",
                   "test/melanoma/deeper/c.png": "melanoma"}
    assert all(r.lesion_id is None and r.source == "isic" for r in recs)


def test_imagefolder_errors(tmp_path, tiny_folder):
    with pytest.raises(SourceError, match=r"nope: source folder not found"):
        open_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"empty: no metadata.csv and no 'melanoma' or 'nevus'"):
        open_source(tmp_path / "empty")
    for f in (tiny_folder / "nevus").iterdir():
        f.unlink()
    with pytest.raises(SourceError, match=r"nevus: empty class folder"):
        open_source(tiny_folder)
    (tiny_folder / "nevus").rmdir()
    with pytest.raises(SourceError, match=r"ds: class folder 'nevus' is missing"):
        open_source(tiny_folder)
    with pytest.raises(SourceError, match="unknown preset"):
        open_source(tiny_folder, preset="kaggle")


def test_one_empty_class_folder_among_several_is_a_problem_not_fatal(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "train" / "melanoma" / "a.png", 1)
    write_image(root / "train" / "nevus" / "b.png", 2)
    (root / "test" / "nevus").mkdir(parents=True)
    scan = scan_source(root)
    assert len(scan.records) == 2
    assert [p.path for p in scan.problems] == [str((root / "test" / "nevus").resolve())]
    with pytest.raises(SourceError, match=r"test/nevus: empty class folder"):
        open_source(root)


def _kaggle_tree(root, isic="skin-lesions", seb="seborrheic_keratosis"):
    """The paper's two downloads: ISIC 2017 (3 classes x 3 splits) and the nevus classifier."""
    k = 0
    for split in ("train", "valid", "test"):
        for cls in ("melanoma", "nevus", seb):
            for i in range(2):
                k += 1
                write_image(root / isic / split / cls / f"ISIC_{k:04d}.jpg", k)
    for i in range(3):
        write_image(root / "nevusclassifier" / "data" / "Nevus" / f"nev_{i}.jpg", 100 + i)
    write_image(root / "nevusclassifier" / "data" / "melanoma" / "ignored.jpg", 200)
    return root


def test_paper_preset(tmp_path):
    root = _kaggle_tree(tmp_path / "kaggle")
    recs = open_source(root, preset="paper")
    by = Counter((r.label, r.source) for r in recs)
    assert by == {("melanoma", "paper:isic2017"): 6, ("nevus", "paper:nevusclassifier"): 3}
    for r in recs:
        parts = [p.lower() for p in r.path.parts]
        if r.label == "melanoma":
            assert "skin-lesions" in parts and "melanoma" in parts
        else:
            assert "nevusclassifier" in parts and "nevus" in parts


def test_paper_preset_other_arrangements(tmp_path):
    root = _kaggle_tree(tmp_path / "k2", isic="archive/data/Skin Lesion Analysis", seb="Seborrheic Keratosis")
    recs = open_source(root, preset="paper")
    assert Counter(r.label for r in recs) == {"melanoma": 6, "nevus": 3}
    # without the preset the same root is an ImageFolder: every melanoma and nevus folder counts
    assert Counter(r.label for r in open_source(root)) == {"melanoma": 7, "nevus": 9}


def test_paper_preset_errors(tmp_path):
    root = _kaggle_tree(tmp_path / "k")
    import shutil

    shutil.rmtree(root / "nevusclassifier")
    with pytest.raises(SourceError, match="no nevus-classifier download"):
        open_source(root, preset="paper")
    shutil.rmtree(root / "skin-lesions")
    write_image(root / "nevus" / "a.jpg", 1)
    with pytest.raises(SourceError, match="no ISIC 2017 download"):
        open_source(root, preset="paper")
