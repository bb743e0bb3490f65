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
