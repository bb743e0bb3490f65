"""Dataset report: what a source folder holds, and every file that cannot be used.

``dataset_report`` scans a source (:func:`moleport.data.sources.scan_source`), decodes
every image (:func:`moleport.data.split.inspect_images`) and gathers class counts, image
sizes (min/median/max), exact-duplicate groups (same decoded pixels) within a class and
across classes, and bad files. A report with bad files or cross-class duplicates is a
failure (:func:`exit_code` 1).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from moleport.data.sources import scan_source
from moleport.data.split import inspect_images


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(min(values)), "median": float(np.median(values)), "max": int(max(values))}


def _duplicate_groups(pairs: list[tuple[str, str, str]]) -> tuple[list[dict], list[dict]]:
    """(within-class, across-class) groups of files with identical pixels; pairs = (path, label, sha)."""
    by_sha: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path, label, sha in pairs:
        by_sha[sha].append((path, label))
    within, across = [], []
    for sha, members in sorted(by_sha.items()):
        if len(members) < 2:
            continue
        labels = sorted({lab for _, lab in members})
        entry = {"sha256": sha, "labels": labels, "files": [p for p, _ in members]}
        (across if len(labels) > 1 else within).append(entry)
    return within, across


def dataset_report(path: str | Path, preset: str | None = None, workers: int = 2) -> dict:
    """Counts, sizes, duplicates and bad files of a source folder (see module doc)."""
    scan = scan_source(path, preset)
    infos = inspect_images([r.path for r in scan.records], workers=workers, desc="report")
    bad = [{"path": p.path, "problem": p.problem} for p in scan.problems]
    bad += [{"path": i.path, "problem": i.problem} for i in infos if i.problem is not None]
    ok = [(r, i) for r, i in zip(scan.records, infos) if i.problem is None]
    within, across = _duplicate_groups([(str(r.path), r.label, i.sha256) for r, i in ok])
    return {
        "source": str(Path(path)),
        "layout": scan.layout,
        "preset": preset,
        "n_files": len(scan.records),
        "counts": dict(sorted(Counter(r.label for r in scan.records).items())),
        "usable_counts": dict(sorted(Counter(r.label for r, _ in ok).items())),
        "lesions": len({r.lesion_id for r in scan.records if r.lesion_id is not None}),
        "width": _stats([i.width for _, i in ok]),
        "height": _stats([i.height for _, i in ok]),
        "common_sizes": [[f"{w}x{h}", n] for (w, h), n in
                         Counter((i.width, i.height) for _, i in ok).most_common(5)],
        "duplicates_within_class": within,
        "duplicates_across_classes": across,
        "bad_files": bad,
        "ignored_files": [{"path": p.path, "problem": p.problem} for p in scan.ignored],
    }


def exit_code(report: dict) -> int:
    """1 when any file is bad or the same pixels carry two labels, else 0."""
    return 1 if report["bad_files"] or report["duplicates_across_classes"] else 0


def format_report(report: dict) -> str:
    """Human-readable text; names every bad file and every duplicate group."""
    w, h = report["width"], report["height"]
    lines = [
        f"source: {report['source']} ({report['layout']} layout{', preset ' + report['preset'] if report['preset'] else ''})",
        f"files: {report['n_files']}  " + "  ".join(f"{k}: {v}" for k, v in report["counts"].items()),
        f"usable: " + "  ".join(f"{k}: {v}" for k, v in report["usable_counts"].items()),
        f"lesion ids: {report['lesions'] or 'none'}",
        f"width  min/median/max: {w['min']}/{w['median']:g}/{w['max']}",
        f"height min/median/max: {h['min']}/{h['median']:g}/{h['max']}",
        "common sizes: " + ", ".join(f"{s} ({n})" for s, n in report["common_sizes"]),
        f"exact duplicates within a class: {len(report['duplicates_within_class'])} group(s)",
    ]
    lines += [f"  {', '.join(d['files'])}" for d in report["duplicates_within_class"]]
    lines.append(f"exact duplicates across classes: {len(report['duplicates_across_classes'])} group(s)")
    lines += [f"  {'/'.join(d['labels'])}: {', '.join(d['files'])}" for d in report["duplicates_across_classes"]]
    lines.append(f"bad files: {len(report['bad_files'])}")
    lines += [f"  {b['path']}: {b['problem']}" for b in report["bad_files"]]
    ignored = report.get("ignored_files") or []
    if ignored:
        lines.append(f"ignored (not images): {len(ignored)}")
        lines += [f"  {b['path']}: {b['problem']}" for b in ignored]
    return "\n".join(lines)
