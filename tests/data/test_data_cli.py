import json

from datahelpers import write_image
from moleport.data.cli import main as data_main
from moleport.data.manifest import load_manifest
from moleport.data.report import dataset_report, exit_code


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synth_cli_is_reproducible(tmp_path, capsys):
    for name in ("a", "b"):
        assert data_main(["synth", "--n", "8", "--seed", "5", "--out", str(tmp_path / name)]) == 0
    assert "wrote 8 images" in capsys.readouterr().out
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b") and len(_tree(tmp_path / "a")) == 9


def test_split_cli_writes_manifest_and_report(tmp_path, capsys):
    data_main(["synth", "--n", "20", "--seed", "0", "--out", str(tmp_path / "s")])
    out = tmp_path / "split" / "manifest.json"
    assert data_main(["split", str(tmp_path / "s"), "--out", str(out), "--seed", "2"]) == 0
    text = capsys.readouterr().out
    m = load_manifest(out)
    assert len(m.items) == 20 and m.seed == 2 and "train" in text
    assert m.source["layout"] == "csv" and m.source["sources"] == ["s"]
    rep = json.loads((tmp_path / "split" / "manifest.report.json").read_text())
    assert rep["n_items"] == 20 and rep["bad_files"] == []


def test_report_clean_and_failing(tmp_path, tiny_folder, capsys):
    rep = dataset_report(tiny_folder)
    assert rep["counts"] == {"melanoma": 6, "nevus": 8} and exit_code(rep) == 0
    assert rep["width"] == {"min": 48, "median": 48.0, "max": 48} and rep["height"]["max"] == 40
    write_image(tiny_folder / "nevus" / "wide.png", 3, size=(96, 40))
    (tiny_folder / "nevus" / "broken.jpg").write_text("nope")
    (tiny_folder / "melanoma" / "dup.png").write_bytes((tiny_folder / "nevus" / "n002.png").read_bytes())
    (tiny_folder / "melanoma" / "dup2.png").write_bytes((tiny_folder / "melanoma" / "m000.png").read_bytes())
    assert data_main(["report", str(tiny_folder), "--json", str(tmp_path / "r.json")]) == 1
    cap = capsys.readouterr()
    assert "broken.jpg: not an image" in cap.out and "FAILED" in cap.err
    assert "exact duplicates across classes: 1" in cap.out and "exact duplicates within a class: 1" in cap.out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["width"]["max"] == 96 and rep["counts"] == {"melanoma": 8, "nevus": 10}


def test_report_missing_source(tmp_path, capsys):
    assert data_main(["report", str(tmp_path / "nope")]) == 1
    assert "source folder not found" in capsys.readouterr().err


def test_bench_reports_rates():
    from moleport.data.bench import bench_decode, bench_synth, format_results

    s = bench_synth(4)
    d = bench_decode(n=3)
    assert s["images"] == 4 and s["images_per_s"] > 0 and s["cpu_images_per_s"] > 0
    assert set(d) == {"decode_hash", "load_image"} and d["load_image"]["images"] == 3
    assert "data.synth" in format_results({"synth": s, **d})
