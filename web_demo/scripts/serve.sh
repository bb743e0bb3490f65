#!/usr/bin/env bash
# make serve-web: serve web_demo/dist/ on http://127.0.0.1:8080/ with COOP/COEP headers.
# Extra arguments go to serve.mjs, e.g. --host 0.0.0.0 (phone on the same Wi-Fi; see README) or --port 9000.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v node >/dev/null || { echo "serve: node not found; install Node.js >= 18" >&2; exit 2; }
if [[ ! -f "$WEB/dist/index.html" ]]; then
  echo "serve: $WEB/dist is not built; run \`make web\` (web_demo/scripts/build.sh artifacts/export/<name>) first" >&2
  exit 2
fi
exec node "$WEB/scripts/serve.mjs" --root "$WEB/dist" "$@"
