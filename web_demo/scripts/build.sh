#!/usr/bin/env bash
# make web: install the npm packages (npm ci, package-lock.json) and assemble web_demo/dist/
# from the export bundle BUNDLE_DIR (its .tflite files, spec.json, labels.txt) and LiteRT.js.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${1:-}"
if [[ -z "$BUNDLE" ]]; then
  echo "usage: web_demo/scripts/build.sh BUNDLE_DIR (e.g. artifacts/export/default)" >&2
  exit 2
fi
if [[ ! -f "$BUNDLE/manifest.json" || ! -f "$BUNDLE/spec.json" ]]; then
  echo "build: $BUNDLE is not an export bundle (manifest.json / spec.json missing); run \`make export\` first" >&2
  exit 2
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "build: $tool not found; install Node.js >= 18 (e.g. apt-get install nodejs npm)" >&2; exit 2; }
done
# npm ci only when package-lock.json changed since the last install.
lock_sum="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
stamp="$WEB/node_modules/.moleport-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  (cd "$WEB" && npm ci --no-audit --no-fund --prefer-offline)
  echo "$lock_sum" > "$stamp"
fi
node "$WEB/scripts/build.mjs" "$BUNDLE"
