#!/usr/bin/env bash
# make web-test: the demo in a real headless Chromium against the export bundle BUNDLE_DIR.
# Installs Debian's chromium if /usr/bin/chromium is missing, builds web_demo/dist/, writes the
# golden fixture (moleport golden) and the Python LiteRT reference, then runs scripts/web_test.mjs.
# Screenshot: $MOLEPORT_ARTIFACTS/web/result.png (default artifacts/web/result.png).
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$WEB/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
BUNDLE="${1:-}"
if [[ -z "$BUNDLE" ]]; then
  echo "usage: web_demo/scripts/web_test.sh BUNDLE_DIR (e.g. artifacts/export/default)" >&2
  exit 2
fi
if [[ ! -f "$BUNDLE/manifest.json" || ! -f "$BUNDLE/spec.json" ]]; then
  echo "web-test: $BUNDLE is not an export bundle (manifest.json / spec.json missing); run \`make export\` first" >&2
  exit 2
fi
[[ -x "$PY" ]] || { echo "web-test: $PY not found (set PYTHON or run make install)" >&2; exit 2; }
if [[ ! -x /usr/bin/chromium ]]; then
  echo "web-test: installing Debian chromium"
  apt-get update && apt-get install -y --no-install-recommends chromium
fi
bash "$WEB/scripts/build.sh" "$BUNDLE"
WORK="$(mktemp -d -t moleport-webtest.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -m moleport.cli golden --bundle "$BUNDLE" --out "$WORK/golden" --n 13
"$PY" "$WEB/scripts/reference.py" --bundle "$BUNDLE" --golden "$WORK/golden" --out "$WORK/reference.json"
SHOT="${MOLEPORT_ARTIFACTS:-$ROOT/artifacts}/web/result.png"
node "$WEB/scripts/web_test.mjs" --golden "$WORK/golden" --reference "$WORK/reference.json" --screenshot "$SHOT"
