"""The web demo's JavaScript preprocessing against moleport.preprocess (Node, no browser), and the
browser test (heavy) against an export bundle."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from moleport.apps.golden import CASES, write_fixture
from moleport.paths import REPO_ROOT, artifacts_dir
from moleport.preprocess import decode_rgb, load_image, resize_canonical

HERE = Path(__file__).resolve().parent
WEB = REPO_ROOT / "web_demo"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js >= 18) is not installed; the JS checks need it")


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    write_fixture(out, n=len(CASES))
    return out


def _run_js(golden: Path, out: Path, crops: dict | None = None) -> None:
    cmd = [NODE, str(HERE / "preprocess_golden.mjs"), str(golden), str(out)]
    if crops:
        (out.parent / "crops.json").write_text(json.dumps(crops), encoding="utf-8")
        cmd.append(str(out.parent / "crops.json"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _js_tensor(out: Path, name: str) -> np.ndarray:
    return np.frombuffer((out / f"{name}.js.tensor").read_bytes(), np.uint8).reshape(224, 224, 3)


@needs_node
def test_js_preprocessing_matches_python_on_every_golden_image(golden, tmp_path):
    """Stored RGBA -> EXIF orientation -> alpha over white -> centre crop -> triangle resize, within ±1 level."""
    out = tmp_path / "js"
    _run_js(golden, out)
    index = json.loads((golden / "index.json").read_text(encoding="utf-8"))
    assert len(index["images"]) == len(CASES)
    cases = {e["name"]: e for e in index["images"]}
    assert any(e["has_alpha"] for e in cases.values()) and {e["orientation"] for e in cases.values()} == set(range(1, 9))
    worst = {}
    for name, e in cases.items():
        py = load_image(golden / e["png"], 224)  # the canonical rule on the PNG itself
        assert np.array_equal(py, np.frombuffer((golden / e["tensor_file"]).read_bytes(), np.uint8).reshape(py.shape))
        diff = np.abs(_js_tensor(out, name).astype(int) - py.astype(int))
        worst[name] = int(diff.max())
    assert max(worst.values()) <= 1, worst


@needs_node
def test_js_user_crop_matches_python_crop_then_resize(golden, tmp_path):
    """A user-moved square: JS crop+resize equals resize_canonical of the same square (±1)."""
    crops = {"photo_640x480": {"x0": 37, "y0": 101, "size": 301},
             "wide_300x200": {"x0": 0, "y0": 0, "size": 150},
             "tall_97x150": {"x0": 10, "y0": 60, "size": 64}}
    out = tmp_path / "js"
    _run_js(golden, out, crops)
    for name, c in crops.items():
        rgb = decode_rgb(golden / f"{name}.png")
        square = rgb[c["y0"]:c["y0"] + c["size"], c["x0"]:c["x0"] + c["size"]]
        py = resize_canonical(np.ascontiguousarray(square), 224)
        diff = np.abs(_js_tensor(out, name).astype(int) - py.astype(int))
        assert diff.max() <= 1, (name, int(diff.max()))
        # and it is not the centre crop (the crop really was applied)
        assert not np.array_equal(py, load_image(golden / f"{name}.png", 224))


@needs_node
def test_js_image_sniffing_and_size_limits(golden):
    """Declared sizes are read from PNG headers; text and over-limit images are refused."""
    script = f"""
    import {{ readFileSync }} from 'node:fs';
    import {{ sniffImage }} from '{(WEB / "src" / "imageinfo.js").as_uri()}';
    import {{ checkImageSize, MAX_PIXELS, riskBand }} from '{(WEB / "src" / "preprocess.js").as_uri()}';
    const index = JSON.parse(readFileSync('{golden / "index.json"}', 'utf8'));
    const dims = index.images.map((e) => sniffImage(readFileSync('{golden}/' + e.png)));
    let tooBig = null, tooSmall = null;
    try {{ checkImageSize(12000, 12000); }} catch (e) {{ tooBig = e.message; }}
    try {{ checkImageSize(31, 400); }} catch (e) {{ tooSmall = e.message; }}
    console.log(JSON.stringify({{ dims, text: sniffImage(Buffer.from('hello, not an image')), tooBig, tooSmall,
      maxPixels: MAX_PIXELS, at: riskBand(0.5, 0.5).label, below: riskBand(0.4999, 0.5).label }}));
    """
    proc = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    index = json.loads((golden / "index.json").read_text(encoding="utf-8"))
    for d, e in zip(got["dims"], index["images"]):
        assert d == {"format": "png", "width": e["width"], "height": e["height"]}
    assert got["text"] is None
    assert "12000x12000" in got["tooBig"] and "too large" in got["tooBig"]
    assert "too small" in got["tooSmall"]
    from moleport.preprocess import MAX_PIXELS, MIN_SIDE
    assert got["maxPixels"] == MAX_PIXELS and MIN_SIDE == 32
    assert (got["at"], got["below"]) == ("melanoma", "nevus")  # p >= threshold is melanoma, as moleport.metrics


@needs_node
def test_js_check_spec_reads_python_specs_and_refuses_unknown_in_graph_rules():
    """The page accepts what moleport.spec writes (with colour constancy and temperature) and refuses a rule
    the exported graph does not implement, naming it."""
    from moleport.spec import ModelSpec

    good = ModelSpec("mobilenet", color_constancy="shades-of-gray-p6", temperature=1.3, threshold=0.2).to_dict()
    bad_rule = {**good, "color_constancy": "grey-world"}
    bad_t = {**good, "temperature": "hot"}
    script = f"""
    import {{ checkSpec }} from '{(WEB / "src" / "preprocess.js").as_uri()}';
    const out = [];
    for (const spec of {json.dumps([good, bad_rule, bad_t])}) {{
      try {{ out.push(checkSpec(spec)); }} catch (e) {{ out.push({{ error: e.message }}); }}
    }}
    console.log(JSON.stringify(out));
    """
    proc = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ok, rule, temp = json.loads(proc.stdout)
    assert ok["threshold"] == 0.2 and ok["melanomaIndex"] == 1 and ok["size"] == 224
    assert 'color_constancy "grey-world"' in rule["error"]
    assert "temperature" in temp["error"]


def _bundle() -> Path | None:
    name = os.environ.get("MOLEPORT_WEB_BUNDLE")
    candidates = [Path(name)] if name else sorted((artifacts_dir() / "export").glob("*/manifest.json"))
    for c in candidates:
        d = c if c.is_dir() else c.parent
        if (d / "manifest.json").is_file() and (d / "spec.json").is_file():
            files = json.loads((d / "manifest.json").read_text(encoding="utf-8")).get("files", [])
            if any(f.get("format") == "tflite" and f.get("precision") == "fp32" for f in files):
                return d
    return None


@pytest.mark.heavy
def test_browser_end_to_end_against_bundle():
    """web_test.sh: golden images in Chromium vs Python LiteRT, bad inputs, offline service worker."""
    if NODE is None:
        pytest.skip("node is not installed")
    bundle = _bundle()
    if bundle is None:
        pytest.skip(f"no export bundle with an fp32 tflite under {artifacts_dir() / 'export'} (run make export)")
    proc = subprocess.run(["bash", str(WEB / "scripts" / "web_test.sh"), str(bundle)], capture_output=True,
                          text=True, timeout=1800)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " 0 failed" in proc.stdout, tail
    assert (artifacts_dir() / "web" / "result.png").is_file()
