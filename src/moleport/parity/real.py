"""``python -m moleport.parity.real`` (``make parity-real``): parity on real dermoscopy images.

When ``../shared/data/ham10000-mel-nv`` (or ``--data``) exists: build a lesion-grouped split
manifest of a deterministic subset, train a small model with the training stage's own loop
(``moleport.train.loop.train_run``; or take ``--ckpt``), export it by invoking the
``moleport export`` CLI in a subprocess (parity never imports the exporter) and run the same
harness on the test split. Prints parity.md; exits 1 on any violation, 0 when the data is absent.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from moleport.paths import artifacts_dir, shared_path


def _subset(records: list, n: int | None, seed: int) -> list:
    """About ``n`` records, whole lesions only, class ratio kept (all of them when n is None)."""
    if n is None or n >= len(records):
        return list(records)
    rng = np.random.default_rng(seed)
    out = []
    for label in ("melanoma", "nevus"):
        mine = [r for r in records if r.label == label]
        lesions: dict[str, list] = {}
        for r in mine:
            lesions.setdefault(r.lesion_id or str(r.path), []).append(r)
        want = round(n * len(mine) / len(records))
        for key in rng.permutation(sorted(lesions)):
            if sum(1 for r in out if r.label == label) >= want:
                break
            out.extend(lesions[key])
    return out


def build_manifest(data_dir: Path, out: Path, subset: int | None, seed: int) -> Path:
    from moleport.data.sources import open_source
    from moleport.data.split import make_manifest

    records = _subset(open_source(data_dir), subset, seed)
    manifest = make_manifest(records, seed=seed, source={"kind": "ham10000-mel-nv subset", "path": str(data_dir),
                                                          "subset": subset})
    return manifest.save(out / "split.json")


def train(manifest_path: Path, out: Path, epochs: int, seed: int) -> Path:
    from moleport.train.config import RunConfig
    from moleport.train.loop import train_run

    weights = "imagenet" if shared_path("weights", "mobilenet_v1_keras_tflite_qat_imagenet.pth") else None
    cfg = RunConfig(name="parity-real", arch="mobilenet", epochs=epochs, batch_size=32, lr=1e-4, weights=weights,
                    early_stop_train_acc=None, seed=seed, out_dir=out / "train")
    run_dir = train_run(cfg, manifest_path)
    return Path(run_dir) / "checkpoint.pt"


def export(ckpt: Path, manifest_path: Path, out: Path, formats: str, calib_n: int) -> Path:
    """Run the ``moleport export`` CLI in a subprocess; the bundle folder it wrote."""
    cmd = [sys.executable, "-m", "moleport.cli", "export", str(ckpt), "--out", str(out), "--name", "real",
           "--manifest", str(manifest_path), "--formats", formats, "--force", "--calib-n", str(calib_n)]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, check=False)
    bundle = out / "real"
    if not (bundle / "manifest.json").is_file():
        raise SystemExit(f"moleport export failed (exit {proc.returncode}); no bundle at {bundle}")
    if proc.returncode != 0:
        print(f"note: moleport export exited {proc.returncode} (some variants failed; see manifest.json)", flush=True)
    return bundle


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m moleport.parity.real", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="dataset folder (default: ../shared/data/ham10000-mel-nv)")
    p.add_argument("--out", default=str(artifacts_dir() / "parity" / "real"))
    p.add_argument("--subset", type=int, default=800, help="images used (whole lesions; 0 = all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--ckpt", default=None, help="skip training: use this checkpoint (trained on --manifest)")
    p.add_argument("--manifest", default=None, help="split manifest to use instead of building one")
    p.add_argument("--formats", default="onnx,tflite,coreml,executorch")
    p.add_argument("--calib-n", type=int, default=100)
    p.add_argument("--limit", type=int, default=None, help="judge only the first N test images")
    p.add_argument("--runtimes", nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from moleport.parity.harness import run_parity

    args = parse_args(argv)
    data = Path(args.data) if args.data else shared_path("data", "ham10000-mel-nv")
    if data is None or not data.is_dir():
        print("parity-real: skipped: ../shared/data/ham10000-mel-nv is absent (pass --data DIR)")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mpath = Path(args.manifest) if args.manifest else build_manifest(data, out, args.subset or None, args.seed)
    ckpt = Path(args.ckpt) if args.ckpt else train(mpath, out, args.epochs, args.seed)
    bundle = export(ckpt, mpath, out / "export", args.formats, args.calib_n)
    payload = run_parity(bundle, split_manifest=mpath, checkpoint=ckpt, limit=args.limit, runtimes=args.runtimes)
    print((bundle / "parity.md").read_text(encoding="utf-8"))
    for v in payload["violations"]:
        print(f"VIOLATION: {v}", file=sys.stderr)
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
