"""Every kind of bad input gives an error naming the file; skip_bad excludes it and reports it."""
import json
import re

import pytest

import moleport.preprocess
from datahelpers import csv_folder, png_bomb, write_image
from moleport.data.cli import main as data_main
from moleport.data.manifest import load_manifest
from moleport.data.sources import SourceError, open_source, scan_source
from moleport.data.split import DataError, make_manifest


def _truncated_jpeg(path):
    write_image(path.with_suffix(".tmp.jpg"), 77, size=(120, 90))
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.with_suffix(".tmp.jpg").unlink()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_jpeg(path):
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)


BAD = {
    "truncated.jpg": (_truncated_jpeg, "truncated"),
    "corrupt.jpg": (_corrupt_jpeg, "not an image|corrupt"),
    "text.jpg": (lambda p: p.write_text("this is not a JPEG\n"), "not an image"),
    "empty.jpg": (lambda p: p.write_bytes(b""), "empty file"),
    "bomb.png": (png_bomb, "decompression bomb"),
    "small.png": (lambda p: write_image(p, 5, size=(20, 31)), "too small"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_named_then_skipped(tmp_path, tiny_folder, name):
    make, problem = BAD[name]
    bad = tiny_folder / "melanoma" / name
    make(bad)
    recs = open_source(tiny_folder)
    with pytest.raises(DataError) as err:
        make_manifest(recs)
    assert str(bad.resolve()) in str(err.value)
    report = tmp_path / "report.json"
    m = make_manifest(recs, skip_bad=True, report_path=report)
    assert len(m.items) == 14 and not any(it.file.endswith(name) for it in m.items)
    assert m.source["excluded"]["bad_files"] == 1
    (entry,) = json.loads(report.read_text())["bad_files"]
    assert entry["path"] == str(bad.resolve())
    assert re.search(problem, entry["problem"]), entry


def test_decompression_bomb_by_pixel_limit(monkeypatch, tiny_folder):
    """A real, decodable image above MAX_PIXELS is refused (the limit is a setting)."""
    write_image(tiny_folder / "nevus" / "big.png", 9, size=(200, 150))
    monkeypatch.setattr(moleport.preprocess, "MAX_PIXELS", 10_000)
    with pytest.raises(DataError, match=r"big.png: decompression bomb"):
        make_manifest(open_source(tiny_folder))


def test_csv_row_without_image_and_skip_bad_cli(tmp_path, capsys):
    root = csv_folder(tmp_path / "c", [(f"m{i}", None, "melanoma") for i in range(5)]
                      + [(f"n{i}", None, "nevus") for i in range(5)])
    (root / "images" / "n3.png").unlink()
    (root / "images" / "m1.png").write_bytes(b"")
    out = tmp_path / "m.json"
    assert data_main(["split", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "n3" in err and "m1.png" in err and not out.exists()
    assert data_main(["split", str(root), "--out", str(out), "--skip-bad"]) == 0
    text = capsys.readouterr().out
    assert "skipped" in text and "n3" in text and "m1.png" in text
    assert len(load_manifest(out).items) == 8
    rep = json.loads((tmp_path / "m.report.json").read_text())
    assert sorted(b["path"].rsplit("/", 1)[1] for b in rep["bad_files"]) == ["m1.png", "n3"]


def test_empty_class_folder_skip_bad_and_missing_class(tmp_path):
    root = tmp_path / "ds"
    for i in range(5):
        write_image(root / "a" / "melanoma" / f"{i}.png", i)
        write_image(root / "a" / "nevus" / f"{i}.png", 10 + i)
    (root / "b" / "nevus").mkdir(parents=True)
    with pytest.raises(SourceError, match=r"b/nevus: empty class folder"):
        open_source(root)
    scan = scan_source(root)
    m = make_manifest(scan.records, skip_bad=True, problems=scan.problems)
    assert len(m.items) == 10 and m.source["excluded"]["bad_files"] == 1
    with pytest.raises(DataError, match=r"b/nevus: empty class folder"):
        make_manifest(scan.records, problems=scan.problems)
    (root / "b" / "nevus").rmdir()
    for f in (root / "a" / "nevus").iterdir():
        f.unlink()
    with pytest.raises(SourceError, match="no nevus images found"):
        scan_source(root)  # a missing class cannot be skipped
