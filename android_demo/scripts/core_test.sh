#!/usr/bin/env bash
# Build and test android_demo/core (pure Java 17) with plain javac + JUnit 4 - no Gradle, no Android SDK.
#   bash android_demo/scripts/core_test.sh            (make android-core-test)
# Env: NAME (bundle name, default "default"), MOLEPORT_BUNDLE (bundle dir), PY (python), GOLDEN_N (images).
# With a bundle, its app assets are packaged with copy_assets.sh into a temporary folder and checked against
# their SHA256SUMS (AssetIntegrityTest), tampered copies included.
# Ends with the line "core: N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CORE="$ROOT/android_demo/core"
PY="${PY:-$ROOT/.venv/bin/python}"
BUNDLE="${MOLEPORT_BUNDLE:-$ROOT/artifacts/export/${NAME:-default}}"
GOLDEN_N="${GOLDEN_N:-13}"

fail() {
    echo "core_test: $*" >&2
    echo "core: 0 passed, 1 failed"
    exit 1
}

find_jar() {  # first existing jar among the arguments
    for jar in "$@"; do
        if [ -f "$jar" ]; then echo "$jar"; return 0; fi
    done
    return 1
}

junit_jars() {
    local junit hamcrest
    junit="$(find_jar "${JUNIT_JAR:-}" /usr/share/java/junit4.jar)" || return 1
    hamcrest="$(find_jar "${HAMCREST_JAR:-}" /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar)" || return 1
    echo "$junit:$hamcrest"
}

install_toolchain() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || fail "javac/JUnit missing and not root: install default-jdk-headless junit4"
        sudo="sudo"
    fi
    command -v apt-get >/dev/null || fail "javac/JUnit missing and no apt-get: install a JDK 17 and JUnit 4.13"
    echo "core_test: installing default-jdk-headless junit4 with apt-get" >&2
    $sudo apt-get update -qq >&2 || fail "apt-get update failed"
    $sudo apt-get install -y --no-install-recommends default-jdk-headless junit4 >&2 \
        || fail "apt-get install default-jdk-headless junit4 failed"
}

if ! command -v javac >/dev/null || ! junit_jars >/dev/null; then
    install_toolchain
fi
CP_JUNIT="$(junit_jars)" || fail "JUnit 4 jars not found under /usr/share/java (set JUNIT_JAR/HAMCREST_JAR)"
[ -x "$PY" ] || fail "python not found at $PY (run make install, or set PY)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/moleport-core.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

GOLDEN_ARGS=(--out "$WORK/golden" --n "$GOLDEN_N")
JAVA_PROPS=(-Dmoleport.golden="$WORK/golden")
if [ -f "$BUNDLE/manifest.json" ]; then
    GOLDEN_ARGS+=(--bundle "$BUNDLE")
    # the assets the app would ship (copy_assets.sh), for AssetIntegrityTest to check against their SHA256SUMS
    if ASSETS_DIR="$WORK/assets" bash "$ROOT/android_demo/scripts/copy_assets.sh" "$BUNDLE" >&2; then
        JAVA_PROPS+=(-Dmoleport.assets="$WORK/assets")
    else
        echo "core_test: copy_assets.sh refused $BUNDLE (see above); the packaged-assets test is skipped" >&2
    fi
else
    echo "core_test: no bundle at $BUNDLE (make export); golden fixture without model references" >&2
fi
(cd "$ROOT" && PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m moleport.cli golden "${GOLDEN_ARGS[@]}") >&2 \
    || fail "golden fixture generation failed"

# javac @argfiles (one quoted path per line) keep this portable to bash 3 (macOS)
find "$CORE/src/main/java" -name '*.java' | sort | sed 's/.*/"&"/' > "$WORK/main-sources.txt"
find "$CORE/src/test/java" -name '*.java' | sort | sed 's/.*/"&"/' > "$WORK/test-sources.txt"
javac --release 17 -Xlint:all -Werror -d "$WORK/main" @"$WORK/main-sources.txt" >&2 \
    || fail "compiling core main sources failed"
javac --release 17 -d "$WORK/test" -cp "$WORK/main:$CP_JUNIT" @"$WORK/test-sources.txt" >&2 \
    || fail "compiling core test sources failed"

java -Djava.awt.headless=true "${JAVA_PROPS[@]}" -cp "$WORK/main:$WORK/test:$CP_JUNIT" \
    org.moleport.core.CoreTestMain
