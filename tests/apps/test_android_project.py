"""Static checks of android_demo: privacy (no network), the core/app split, and the build wiring."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "android_demo"
ANDROID_NS = "{http://schemas.android.com/apk/res/android}"


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
