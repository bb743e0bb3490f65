"""Export benchmark: seconds and artifact size per format/precision for one checkpoint."""
from __future__ import annotations

import tempfile
from pathlib import Path

from moleport.export.bundle import export_bundle


def bench_export(ckpt: str | Path, manifest: str | Path, *, formats=None, calib_n: int = 300,
                 measure=None) -> list[dict]:
    """Export into a temporary folder and report one row per variant:
    format, precision, status, seconds (the converter run that produced it), bytes, error; with ``measure``
    (bundle dir -> {artifact path: extra columns}) also what it measures on the exported files, e.g. latency."""
    with tempfile.TemporaryDirectory(prefix="moleport-bench-export-") as tmp:
        result = export_bundle(ckpt, tmp, manifest=manifest, formats=formats, calib_n=calib_n, name="bench")
        sizes = {f["path"]: f["bytes"] for f in result.manifest["files"]}
        extra = measure(result.out_dir) if measure is not None else {}
        return [{"format": o.format, "precision": o.precision, "status": o.status, "seconds": o.seconds,
                 "bytes": sizes.get(o.path), **extra.get(o.path, {}), "error": o.error} for o in result.outcomes]


#: The formats the apps run (the phone/browser artifacts) timed by :func:`bench_tta`.
TTA_BENCH_FORMATS = ("tflite", "executorch")


def bench_tta(ckpt: str | Path, manifest: str | Path, *, rules=("flips4", "dihedral8"), formats=TTA_BENCH_FORMATS,
              calib_n: int = 300, measure) -> list[dict]:
    """The checkpoint exported once without test-time augmentation and once per rule (its spec's ``tta`` set, the
    weights unchanged), every variant timed by ``measure``; rows carry ``tta`` and ``latency_vs_none``, the ratio
    to the same format and precision without views (issue 16's budget: at most 4x)."""
    from moleport.models.checkpoint import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(ckpt)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="moleport-bench-tta-") as tmp:
        for rule in (None, *rules):
            variant = save_checkpoint(Path(tmp) / f"{rule or 'none'}.pt", loaded.model, loaded.spec.replace(tta=rule),
                                      manifest_sha256=loaded.meta.get("manifest_sha256"))
            rows += [{"tta": rule or "none", **row}
                     for row in bench_export(variant, manifest, formats=list(formats), calib_n=calib_n, measure=measure)]
    base = {(r["format"], r["precision"]): r.get("latency_ms") for r in rows if r["tta"] == "none"}
    for r in rows:
        ref = base.get((r["format"], r["precision"]))
        if ref and r.get("latency_ms"):
            r["latency_vs_none"] = round(r["latency_ms"] / ref, 2)
    return rows
