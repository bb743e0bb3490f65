#!/usr/bin/env bash
# Copy an export bundle's TFLite models, spec.json and labels.txt into the app's assets (git-ignored):
#   bash android_demo/scripts/copy_assets.sh artifacts/export/default      (make android-assets)
# Writes android_demo/app/src/main/assets/model/{model_fp32.tflite, model_int8.tflite?, spec.json, labels.txt,
# ship.json, SHA256SUMS} after checking each model's, spec.json's and labels.txt's sha256 against the bundle's
# manifest.json ("files", "documents"). SHA256SUMS (sha256sum format) lists every other file copied; the app
# checks spec.json, labels.txt, ship.json and the model against it before using them (core AssetIntegrity).
# A model that failed its parity gates (parity.json) is not bundled. ASSETS_DIR overrides the destination.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${ASSETS_DIR:-$ROOT/android_demo/app/src/main/assets/model}"

die() {
    echo "copy_assets: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: copy_assets.sh BUNDLE_DIR (e.g. artifacts/export/default)"
BUNDLE="$1"
[ -d "$BUNDLE" ] || die "bundle folder '$BUNDLE' not found; run 'make export' first"
for f in manifest.json spec.json labels.txt; do
    [ -f "$BUNDLE/$f" ] || die "'$BUNDLE/$f' missing: not a complete export bundle (run 'make export')"
done

PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3)" || die "python3 is needed to read manifest.json"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/moleport-assets.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

"$PY" - "$BUNDLE" "$STAGE" <<'PYEOF' || die "bundle check failed (see above)"
import hashlib, json, shutil, sys
from pathlib import Path

bundle, stage = Path(sys.argv[1]), Path(sys.argv[2])
manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
files = manifest.get("files")
if not isinstance(files, list):
    sys.exit(f"{bundle}/manifest.json: 'files' must be a list")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# spec.json and labels.txt must be the exported ones (manifest.json "documents"), like every model file
docs = {d.get("path"): d for d in manifest.get("documents") or [] if isinstance(d, dict)}
for name in ("spec.json", "labels.txt"):
    entry = docs.get(name)
    if entry is None:
        sys.exit(f"{bundle}/manifest.json: 'documents' does not list {name}; re-export the bundle")
    got = sha256(bundle / name)
    if got != entry.get("sha256"):
        sys.exit(f"{bundle / name}: sha256 {got} does not match manifest.json ({entry.get('sha256')}): "
                 f"changed after export")
    shutil.copyfile(bundle / name, stage / name)
sums = [(docs[n]["sha256"], n) for n in ("spec.json", "labels.txt")]
tflite = {f.get("precision"): f for f in files if isinstance(f, dict) and f.get("format") == "tflite"}
if "fp32" not in tflite:
    sys.exit(f"{bundle}/manifest.json lists no fp32 tflite model (found: {sorted(map(str, tflite))})")
parity_path = bundle / "parity.json"
if not parity_path.is_file():
    sys.exit(f"{parity_path}: not found; run 'moleport parity' first (parity.json decides what ships)")
parity = json.loads(parity_path.read_text(encoding="utf-8"))
sealed = parity.get("manifest_sha256")
if sealed and sealed != sha256(bundle / "manifest.json"):
    sys.exit(f"{bundle}/manifest.json changed after parity judged it (parity.json manifest_sha256); "
             f"re-run 'moleport parity'")
decision = (parity.get("ship") or {}).get("android")
if not isinstance(decision, dict):
    sys.exit(f"{parity_path}: no ship decision ('ship' -> 'android'); re-run 'moleport parity' on the bundle")
if not decision.get("fp32"):
    sys.exit(f"{parity_path}: the fp32 model failed parity ({decision.get('why')}); not bundling anything")
for path, why in (decision.get("rejected") or {}).items():
    print(f"copy_assets: skipping {path}: {why} (see {parity_path})")
by_path = {f.get("path"): f for f in tflite.values()}
wanted = [decision["fp32"]] + ([decision["default"]] if decision.get("default") not in (None, decision["fp32"]) else [])
for rel in wanted:
    entry = by_path.get(rel)
    if entry is None:
        sys.exit(f"{parity_path}: ships {rel}, which manifest.json does not list as a tflite file")
    precision = entry["precision"]
    src = bundle / entry["path"]
    if not src.is_file():
        sys.exit(f"{src}: listed in manifest.json but missing")
    digest = sha256(src)
    if digest != entry.get("sha256"):
        sys.exit(f"{src}: sha256 {digest} does not match manifest.json ({entry.get('sha256')})")
    shutil.copyfile(src, stage / f"model_{precision}.tflite")
    sums.append((digest, f"model_{precision}.tflite"))
    print(f"copy_assets: {src} -> model_{precision}.tflite ({src.stat().st_size} bytes)")
default = by_path[decision.get("default") or decision["fp32"]]["precision"]
ship = (json.dumps({"default": f"model_{default}.tflite", "fp32": "model_fp32.tflite", "why": decision.get("why")},
                  indent=1) + "\n").encode("utf-8")
(stage / "ship.json").write_bytes(ship)
sums.append((hashlib.sha256(ship).hexdigest(), "ship.json"))
print(f"copy_assets: default model model_{default}.tflite ({decision.get('why')})")
# the list the app checks what it loads against (sha256sum format; core AssetIntegrity): every copied file
listed = sorted(n for _, n in sums)
copied = sorted(p.name for p in stage.iterdir())
if listed != copied:
    sys.exit(f"copy_assets: internal error: SHA256SUMS would list {listed} but {copied} were copied")
(stage / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for d, n in sums), encoding="utf-8")
PYEOF

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$STAGE" "$DEST"
trap - EXIT
chmod 755 "$DEST"
echo "copy_assets: assets ready in $DEST"
