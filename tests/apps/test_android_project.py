"""Checks of android_demo: privacy (no network), the core/app split, the build wiring, and the sha256 list
(SHA256SUMS) copy_assets.sh writes beside the assets, which the app checks spec and model against before use."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "android_demo"
ANDROID_NS = "{http://schemas.android.com/apk/res/android}"
APP_SRC = DEMO / "app/src/main/java/org/moleport/demo"


def test_manifest_asks_for_camera_only():
    root = ET.parse(DEMO / "app/src/main/AndroidManifest.xml").getroot()
    permissions = {p.get(ANDROID_NS + "name") for p in root.iter("uses-permission")}
    assert permissions == {"android.permission.CAMERA"}
    app = root.find("application")
    assert app.get(ANDROID_NS + "allowBackup") == "false"
    exported = [a.get(ANDROID_NS + "name") for a in app.iter("activity") if a.get(ANDROID_NS + "exported") == "true"]
    assert exported == [".MainActivity"]


def test_app_code_has_no_network_access():
    network = re.compile(r"^import (java\.net\.|javax\.net\.|okhttp3\.|android\.net\.http|io\.ktor|retrofit2)", re.M)
    for src in (DEMO / "app/src/main/java").rglob("*.kt"):
        assert not network.search(src.read_text()), f"{src} imports a networking API"


def test_core_is_pure_jvm_java17_without_newer_android_apis():
    # minSdk 24: no android.* in core, and no JDK APIs Android lacks below API 26/30 (java.nio.file, List.of...)
    banned = re.compile(r"import android\.|java\.nio\.file|\b(List|Set|Map)\.(of|copyOf)\(|\.readAllBytes\(|\.isBlank\(")
    sources = list((DEMO / "core/src/main/java").rglob("*.java"))
    assert len(sources) >= 10
    for src in sources:
        hit = banned.search(src.read_text())
        assert hit is None, f"{src}: {hit.group(0)!r} is not available on Android minSdk 24"


def test_gradle_wiring():
    settings = (DEMO / "settings.gradle.kts").read_text()
    assert 'include(":app", ":core")' in settings
    app = (DEMO / "app/build.gradle.kts").read_text()
    assert 'implementation(project(":core"))' in app and "minSdk = 24" in app and "compileSdk = 35" in app
    assert "`java-library`" in (DEMO / "core/build.gradle.kts").read_text()
    catalog = (DEMO / "gradle/libs.versions.toml").read_text()
    for lib in ("litert", "litert-support", "litert-metadata", "camera-core", "camera-view"):
        assert f'name = "{lib}"' in catalog, lib
    wrapper = (DEMO / "gradle/wrapper/gradle-wrapper.properties").read_text()
    assert re.search(r"gradle-8\.(9|1\d)-bin\.zip", wrapper)


def test_app_checks_spec_and_model_against_sha256sums_before_use():
    assets = (APP_SRC / "ModelAssets.kt").read_text()
    # spec.json/labels.txt are only read through the core check (which verifies, then parses)
    assert "sums.readSpec(readBytes(context, SPEC), readBytes(context, LABELS))" in assets
    assert 'sums.verify("ship.json", readBytes(context, SHIP))' in assets
    assert 'AssetIntegrity.parse(readBytes(context, SUMS), "assets/$SUMS")' in assets
    for src in APP_SRC.glob("*.kt"):
        assert "ModelSpec.parse(" not in src.read_text(), f"{src} parses a spec without the sha256 check"
    model = (APP_SRC / "LiteRtModel.kt").read_text()
    load = model.index("FileUtil.loadMappedFile(")
    verify = model.index("sums.verify(assetPath.substringAfterLast('/'), buffer)")
    assert load < verify < model.index("checkMetadataLabels(buffer") < model.index("Interpreter(buffer")
    services = (APP_SRC / "Services.kt").read_text()
    assert "LiteRtModel.open(app, asset, spec, sums)" in services and "ModelAssets.integrity(app)" in services
    assert '"SHA256SUMS"' in (DEMO / "app/build.gradle.kts").read_text()  # the build stops without the list


def _fake_bundle(d: Path) -> Path:
    """An export bundle as copy_assets.sh reads it: models (opaque bytes: nothing here runs them), spec.json,
    labels.txt, manifest.json ("files", "documents") and parity.json's android ship decision."""
    from moleport.spec import ModelSpec

    d.mkdir()
    (d / "tflite").mkdir()
    files = []
    for precision, size in (("fp32", 4096), ("int8", 1024)):
        p = d / "tflite" / f"model_{precision}.tflite"
        p.write_bytes(hashlib.sha256(precision.encode()).digest() * (size // 32))
        files.append({"path": f"tflite/{p.name}", "format": "tflite", "precision": precision,
                      "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    ModelSpec(architecture="tiny", threshold=0.4).save(d / "spec.json")
    (d / "labels.txt").write_text("nevus\nmelanoma\n")
    documents = [{"path": n, "sha256": hashlib.sha256((d / n).read_bytes()).hexdigest(),
                  "bytes": (d / n).stat().st_size} for n in ("spec.json", "labels.txt")]
    (d / "manifest.json").write_text(json.dumps({"files": files, "documents": documents}))
    ship = {"format": "tflite", "fp32": "tflite/model_fp32.tflite", "default": "tflite/model_int8.tflite",
            "ships": ["tflite/model_fp32.tflite", "tflite/model_int8.tflite"], "rejected": {},
            "why": "int8 is the smallest that passed"}
    (d / "parity.json").write_text(json.dumps({"ship": {"android": ship}}))
    return d


def _copy_assets(bundle: Path, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEMO / "scripts/copy_assets.sh"), str(bundle)],
                          env=dict(os.environ, ASSETS_DIR=str(dest)), capture_output=True, text=True, timeout=120)


def test_copy_assets_lists_every_copied_file_in_sha256sums(tmp_path):
    dest = tmp_path / "assets" / "model"
    run = _copy_assets(_fake_bundle(tmp_path / "bundle"), dest)
    assert run.returncode == 0, run.stderr
    copied = sorted(p.name for p in dest.iterdir() if p.name != "SHA256SUMS")
    assert copied == ["labels.txt", "model_fp32.tflite", "model_int8.tflite", "ship.json", "spec.json"]
    lines = (dest / "SHA256SUMS").read_text().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{64}  [^/ ]+", line) for line in lines), lines  # sha256sum format
    sums = {name: digest for digest, name in (line.split("  ") for line in lines)}
    assert len(sums) == len(lines)
    assert sums == {n: hashlib.sha256((dest / n).read_bytes()).hexdigest() for n in copied}
    if shutil.which("sha256sum"):  # the list is what `sha256sum -c` checks
        check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=dest, capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


#: What the app does with the assets (ModelAssets.kt, LiteRtModel.kt), through the core classes it calls.
CHECK_JAVA = """
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.moleport.core.AssetIntegrity;
import org.moleport.core.IntegrityException;
import org.moleport.core.ModelSpec;

public class CheckAssets {
    public static void main(String[] args) throws Exception {
        Path dir = Paths.get(args[0]);
        try {
            AssetIntegrity sums = AssetIntegrity.parse(Files.readAllBytes(dir.resolve("SHA256SUMS")),
                    "assets/model/SHA256SUMS");
            ModelSpec spec = sums.readSpec(Files.readAllBytes(dir.resolve("spec.json")),
                    Files.readAllBytes(dir.resolve("labels.txt")));
            sums.verify("ship.json", Files.readAllBytes(dir.resolve("ship.json")));
            for (String model : new String[] {"model_fp32.tflite", "model_int8.tflite"}) {
                sums.verify(model, ByteBuffer.wrap(Files.readAllBytes(dir.resolve(model))));
            }
            System.out.println("OK threshold " + spec.threshold());
        } catch (IntegrityException e) {
            System.out.println("REFUSED " + e.getMessage());
            System.exit(3);
        }
    }
}
"""


@pytest.fixture(scope="module")
def core_classes(tmp_path_factory):
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("no JDK (javac/java); android_demo/scripts/core_test.sh installs one")
    out = tmp_path_factory.mktemp("core")
    sources = sorted(str(p) for p in (DEMO / "core/src/main/java").rglob("*.java"))
    run = subprocess.run(["javac", "--release", "17", "-d", str(out / "classes"), *sources], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (out / "CheckAssets.java").write_text(CHECK_JAVA)
    return out


def _check(core_classes: Path, assets: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", str(core_classes / "classes"), str(core_classes / "CheckAssets.java"),
                           str(assets)], capture_output=True, text=True, timeout=120)


def test_core_refuses_tampered_assets(tmp_path, core_classes):
    dest = tmp_path / "assets" / "model"
    assert _copy_assets(_fake_bundle(tmp_path / "bundle"), dest).returncode == 0
    ok = _check(core_classes, dest)
    assert ok.returncode == 0 and ok.stdout.strip() == "OK threshold 0.4", ok.stdout + ok.stderr

    def tampered(name: str, edit, tag: str = "") -> subprocess.CompletedProcess:
        copy = tmp_path / f"tampered_{name}{tag}"
        shutil.copytree(dest, copy)
        edit(copy / name)
        return _check(core_classes, copy)

    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    for name in ("spec.json", "labels.txt", "ship.json", "model_fp32.tflite", "model_int8.tflite"):
        run = tampered(name, flip)
        want = hashlib.sha256((dest / name).read_bytes()).hexdigest()
        got = hashlib.sha256((tmp_path / f"tampered_{name}" / name).read_bytes()).hexdigest()
        assert run.returncode == 3, run.stdout + run.stderr
        assert run.stdout.startswith(f"REFUSED assets/model/{name}: sha256 {got} does not match "
                                     f"assets/model/SHA256SUMS ({want})"), run.stdout
    # a list that does not cover the spec, or is not in sha256sum format, is refused too
    run = tampered("SHA256SUMS", lambda p: p.write_text(
        "".join(line + "\n" for line in p.read_text().splitlines() if not line.endswith("  spec.json"))))
    assert run.returncode == 3 and run.stdout.startswith("REFUSED assets/model/spec.json: not listed in "
                                                         "assets/model/SHA256SUMS"), run.stdout
    run = tampered("SHA256SUMS", lambda p: p.write_text(p.read_text().replace("  ", " ", 1)), "_malformed")
    assert run.returncode == 3 and "assets/model/SHA256SUMS line 1: expected" in run.stdout, run.stdout
