"""``moleport export CKPT --out DIR [--name N] [--manifest SPLIT] [--formats ...] [--force] [--calib-n 300]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moleport.paths import artifacts_dir


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX, TFLite, Core ML and ExecuTorch",
                              description="Write <out>/<name>/ with every artifact, spec.json, labels.txt, "
                                          "manifest.json and MODEL_CARD.md.")
    p.add_argument("ckpt", help="checkpoint.pt written by training")
    p.add_argument("--out", default=str(artifacts_dir() / "export"), help="parent folder of the bundle (default: %(default)s)")
    p.add_argument("--name", default=None, help="bundle folder name (default: the architecture)")
    p.add_argument("--manifest", default=None, help="split manifest; its train split calibrates int8 variants")
    p.add_argument("--formats", default="onnx,tflite,coreml,executorch", help="comma-separated subset (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--calib-n", type=int, default=300, help="training images used for int8 calibration (default: %(default)s)")
    p.add_argument("--int8-program", default=None, type=Path,
                   help="int8 backbone from `python -m moleport.train.qat` (default: post-training quantization "
                        "on --calib-n training images)")
    p.set_defaults(func=run)


def summary_table(result) -> str:
    files = {f["path"]: f for f in result.manifest.get("files", [])}
    rows = [("format", "precision", "size", "status")]
    for o in result.outcomes:
        size = f"{files[o.path]['bytes'] / 1e6:.1f} MB" if o.path in files else "-"
        rows.append((o.format, o.precision, size, "ok" if o.status == "ok" else f"FAILED: {o.error}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows)


def run(args: argparse.Namespace) -> int:
    from moleport.export.bundle import ExportError, parse_formats
    from moleport.export.console import export_logged

    try:
        formats = parse_formats(args.formats)
        result = export_logged(args.ckpt, args.out, name=args.name, manifest=args.manifest, formats=formats,
                               force=args.force, calib_n=args.calib_n, int8_program=args.int8_program)
    except ExportError as exc:
        print(f"moleport export: {exc}", file=sys.stderr)
        return 2
    print(summary_table(result))
    print(f"bundle: {result.out_dir}")
    if not result.ok:
        print(f"moleport export: {len(result.failures)} variant(s) failed (see manifest.json 'failures')", file=sys.stderr)
        return 1
    return 0
