"""Validated, leak-free train/val/test splits: from source records to a :class:`Manifest`.

``make_manifest`` decodes every image with :func:`moleport.preprocess.decode_rgb` (the
same decoder training and parity use), so a file that would crash training is found here,
and hashes the decoded pixels (``Item.sha256``: sha256 of ``"<height>x<width>\\n"`` followed
by the RGB bytes), so re-encoded copies of one image are caught as duplicates.

Grouping
    Images are grouped so that a group never straddles two splits: images of one lesion
    (``lesion_id``) and images with identical pixels are one group (union-find over both,
    so a duplicate bridging two lesions joins them).
Duplicates
    Same pixels and same label: ``duplicates="drop"`` keeps the first file (sorted by path)
    and reports the others; ``"refuse"`` raises. Same pixels with two labels is an error
    (with ``skip_bad`` every copy is excluded and reported).
Splitting (group-stratified)
    Per class, integer targets ``val = floor(n*r_val + .5)``, ``test = floor(n*r_test + .5)``,
    ``train = n - val - test``; groups are shuffled with ``seed``, ordered largest first
    (stable) and each goes to the split with the largest remaining deficit (ties: train, val,
    test). With one image per group the targets are met exactly.
Bad files
    Raise :class:`DataError` naming every bad file; with ``skip_bad`` they are excluded and
    listed in the JSON report (and in ``Manifest.source["excluded"]``).
"""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from moleport.data.manifest import CLASSES, SPLITS, Item, Manifest
from moleport.data.sources import Problem, Record, valid_utf8, printable
from moleport.jsonio import write_json_atomic
from moleport.preprocess import ImageError, decode_rgb

log = logging.getLogger(__name__)

#: Parallel decoding starts only when the serial estimate for the rest exceeds this (s).
PARALLEL_AFTER_S = 20.0
_PROBE = 64


class DataError(ValueError):
    """The data cannot be split as asked; the message names every offending file."""


@dataclass(frozen=True)
class ImageInfo:
    """Result of decoding one file: pixel hash and size, or the problem."""

    path: str
    sha256: str | None
    width: int = 0
    height: int = 0
    problem: str | None = None


@dataclass
class SplitReport:
    """What ``make_manifest`` did, written as JSON to ``report_path``."""

    n_records: int = 0
    n_items: int = 0
    bad_files: list[dict] = field(default_factory=list)  # {path, problem}
    duplicates_dropped: list[dict] = field(default_factory=list)  # {file, kept, sha256}
    label_conflicts: list[dict] = field(default_factory=list)  # {files, labels, sha256 | lesion_id}
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    ignored_files: list[dict] = field(default_factory=list)  # {path, problem}: non-image files of the source

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_sha256(rgb: np.ndarray) -> str:
    """sha256 of ``"<h>x<w>\\n"`` + the uint8 RGB bytes (shape included: no cross-shape collisions)."""
    h = hashlib.sha256(f"{rgb.shape[0]}x{rgb.shape[1]}\n".encode())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return h.hexdigest()


def inspect_image(path: str | Path) -> ImageInfo:
    """Decode one file; never raises for a bad image (the problem is returned)."""
    try:
        rgb = decode_rgb(path)
    except ImageError as exc:
        return ImageInfo(str(path), None, problem=exc.problem)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, named
        return ImageInfo(str(path), None, problem=f"unexpected decoder error ({type(exc).__name__}: {exc})")
    return ImageInfo(str(path), pixel_sha256(rgb), width=int(rgb.shape[1]), height=int(rgb.shape[0]))


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False, disable=total < 50)


def inspect_images(paths: Sequence[str | Path], workers: int = 2, desc: str = "decode") -> list[ImageInfo]:
    """:func:`inspect_image` for every path, in order (results do not depend on ``workers``).

    The first images are decoded serially; if the rest would take longer than
    ``PARALLEL_AFTER_S`` seconds, they are decoded by ``workers`` processes.
    """
    paths = [str(p) for p in paths]
    out: list[ImageInfo] = []
    with _progress(len(paths), desc) as bar:
        start = time.perf_counter()
        for p in paths[:_PROBE]:
            out.append(inspect_image(p))
            bar.update(1)
        rest = paths[len(out):]
        per_image = (time.perf_counter() - start) / max(len(out), 1)
        if workers > 1 and per_image * len(rest) > PARALLEL_AFTER_S:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for info in pool.map(inspect_image, rest, chunksize=16):
                    out.append(info)
                    bar.update(1)
        else:
            for p in rest:
                out.append(inspect_image(p))
                bar.update(1)
    return out


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_ids(lesion_ids: Sequence[str | None], shas: Sequence[str | None] | None = None) -> list[int]:
    """Group index per image: images sharing a lesion id or a pixel hash share a group."""
    uf = _UnionFind(len(lesion_ids))
    for keys in (lesion_ids, shas or ()):
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k is None:
                continue
            if k in first:
                uf.union(first[k], i)
            else:
                first[k] = i
    roots = [uf.find(i) for i in range(len(lesion_ids))]
    renum: dict[int, int] = {}
    return [renum.setdefault(r, len(renum)) for r in roots]


def lesion_subset(records: Sequence[Record], n: int | None, seed: int = 0) -> list[Record]:
    """About ``n`` records, whole lesions only, the class ratio kept (all of them when n is None or too big)."""
    if n is None or n >= len(records):
        return list(records)
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    for label in CLASSES:
        mine = [r for r in records if r.label == label]
        lesions: dict[str, list[Record]] = {}
        for r in mine:
            lesions.setdefault(r.lesion_id or str(r.path), []).append(r)
        want, have = round(n * len(mine) / len(records)), 0
        for key in rng.permutation(sorted(lesions)):
            if have >= want:
                break
            out.extend(lesions[key])
            have += len(lesions[key])
    return out


def _targets(n: int, ratios: Sequence[float]) -> list[int]:
    val = int(np.floor(n * ratios[1] + 0.5))
    test = int(np.floor(n * ratios[2] + 0.5))
    return [n - val - test, val, test]


def assign_splits(labels: Sequence[str], groups: Sequence[int], seed: int = 0,
                  ratios: Sequence[float] = (0.6, 0.2, 0.2)) -> list[str]:
    """Split name per image, stratified by label, never splitting a group (see module doc)."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    group_label: dict[int, str] = {}
    for g, idx in members.items():
        labs = {labels[i] for i in idx}
        if len(labs) != 1:
            raise DataError(f"group {g} mixes labels {sorted(labs)}; cannot stratify")
        group_label[g] = labs.pop()
    out = [""] * len(labels)
    for k, label in enumerate(sorted(set(group_label.values()))):
        gs = sorted(g for g, lab in group_label.items() if lab == label)
        order = np.random.default_rng([seed, k]).permutation(len(gs))
        gs = sorted((gs[j] for j in order), key=lambda g: -len(members[g]))  # stable: big groups first
        target = _targets(sum(len(members[g]) for g in gs), ratios)
        have = [0, 0, 0]
        for g in gs:
            s = max(range(3), key=lambda j: (target[j] - have[j], -j))
            have[s] += len(members[g])
            for i in members[g]:
                out[i] = SPLITS[s]
    return out


def _check_args(ratios: Sequence[float], duplicates: str) -> None:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {tuple(ratios)}")
    if duplicates not in ("drop", "refuse"):
        raise ValueError(f"duplicates must be 'drop' or 'refuse', got {duplicates!r}")


@dataclass(frozen=True)
class SplitResult:
    manifest: Manifest
    report: SplitReport


def _drop_duplicates(good: list[tuple[Record, ImageInfo]], report: SplitReport) -> list[tuple[Record, ImageInfo]]:
    """One image per pixel hash; same pixels with two labels -> every copy goes to label_conflicts."""
    by_sha: dict[str, list[tuple[Record, ImageInfo]]] = defaultdict(list)
    for pair in good:
        by_sha[pair[1].sha256].append(pair)
    kept = []
    for sha, pairs in by_sha.items():
        labels = sorted({r.label for r, _ in pairs})
        if len(labels) > 1:
            report.label_conflicts.append({"sha256": sha, "labels": labels,
                                           "files": [str(r.path) for r, _ in pairs],
                                           "problem": "identical pixels under two labels"})
            continue
        kept.append(pairs[0])
        report.duplicates_dropped.extend({"file": str(r.path), "kept": str(pairs[0][0].path), "sha256": sha}
                                         for r, _ in pairs[1:])
    return sorted(kept, key=lambda p: str(p[0].path))


def _drop_mixed_lesions(good: list[tuple[Record, ImageInfo]], report: SplitReport) -> list[tuple[Record, ImageInfo]]:
    """Groups (lesions joined by duplicates) whose images carry two labels -> label_conflicts."""
    groups = group_ids([r.lesion_id for r, _ in good], [i.sha256 for _, i in good])
    labels: dict[int, set[str]] = defaultdict(set)
    for g, (r, _) in zip(groups, good):
        labels[g].add(r.label)
    mixed = {g for g, labs in labels.items() if len(labs) > 1}
    for g in sorted(mixed):
        pairs = [p for gg, p in zip(groups, good) if gg == g]
        report.label_conflicts.append({"lesion_ids": sorted({str(r.lesion_id) for r, _ in pairs}),
                                       "labels": sorted(labels[g]), "files": [str(r.path) for r, _ in pairs],
                                       "problem": "one lesion labelled both melanoma and nevus"})
    return [p for g, p in zip(groups, good) if g not in mixed]


def _failure_message(report: SplitReport, duplicates: str, skip_bad: bool) -> str | None:
    lines = []
    if not skip_bad:
        lines += [f"  bad file {b['path']}: {b['problem']}" for b in report.bad_files]
        lines += [f"  label conflict ({c['problem']}): {', '.join(c['files'])}" for c in report.label_conflicts]
    if duplicates == "refuse":
        lines += [f"  duplicate {d['file']} (same pixels as {d['kept']})" for d in report.duplicates_dropped]
    if not lines:
        return None
    hint = "" if skip_bad else " (use skip_bad / --skip-bad to exclude bad files and list them in a report)"
    return f"{len(lines)} problem(s) in the data{hint}:\n" + "\n".join(lines)


def write_json(path: str | Path, data: dict) -> Path:
    """Write JSON atomically (:func:`moleport.jsonio.write_json_atomic`: no temporary file is left on failure);
    an unwritable target (a folder, no permission) raises :class:`DataError` naming it."""
    return write_json_atomic(path, data, DataError, "JSON report")


def build_split(records: Iterable[Record], seed: int = 0, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                duplicates: str = "drop", skip_bad: bool = False, report_path: str | Path | None = None,
                problems: Sequence[Problem] = (), workers: int = 2,
                source: dict | None = None, ignored: Sequence[Problem] = ()) -> SplitResult:
    """:func:`make_manifest` returning the :class:`SplitReport` too."""
    _check_args(ratios, duplicates)
    t0 = time.perf_counter()
    recs = sorted(records, key=lambda r: str(r.path))
    report = SplitReport(n_records=len(recs), bad_files=[{"path": p.path, "problem": p.problem} for p in problems],
                         ignored_files=[{"path": p.path, "problem": p.problem} for p in ignored])
    unnamed = [r for r in recs if not valid_utf8(r.path)]  # cannot go into a manifest (UTF-8 JSON, apps)
    report.bad_files += [{"path": printable(r.path), "problem": "file name is not valid UTF-8; rename the file"}
                         for r in unnamed]
    recs = [r for r in recs if valid_utf8(r.path)]
    infos = inspect_images([r.path for r in recs], workers=workers, desc="decode+hash")
    good = []
    for r, info in zip(recs, infos):
        if info.problem is not None:
            report.bad_files.append({"path": str(r.path), "problem": info.problem})
        else:
            good.append((r, info))
    good = _drop_mixed_lesions(_drop_duplicates(good, report), report)
    failure = _failure_message(report, duplicates, skip_bad)
    if failure is not None:
        report.seconds = round(time.perf_counter() - t0, 3)
        if report_path is not None:
            write_json(report_path, report.to_dict())
        raise DataError(failure)
    if not good:
        raise DataError("no usable images left to split")
    splits = assign_splits([r.label for r, _ in good], group_ids([r.lesion_id for r, _ in good]), seed, ratios)
    items = tuple(Item(file=str(r.path), sha256=i.sha256, label=r.label, split=s, lesion_id=r.lesion_id,
                       source=r.source) for (r, i), s in zip(good, splits))
    src = {"sources": sorted({r.source for r in recs}), "records": len(recs), **(source or {}),
           "excluded": {"bad_files": len(report.bad_files), "duplicates_dropped": len(report.duplicates_dropped),
                        "label_conflicts": len(report.label_conflicts)}}
    manifest = Manifest(items=items, seed=seed, source=src, ratios=tuple(float(r) for r in ratios))
    report.n_items, report.counts = len(items), manifest.counts()
    report.seconds = round(time.perf_counter() - t0, 3)
    if report_path is not None:
        write_json(report_path, report.to_dict())
    for b in report.bad_files:
        log.warning("skipped bad file %s: %s", b["path"], b["problem"])
    return SplitResult(manifest, report)


def make_manifest(records: Iterable[Record], seed: int = 0, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                  duplicates: str = "drop", skip_bad: bool = False, report_path: str | Path | None = None,
                  *, problems: Sequence[Problem] = (), workers: int = 2, source: dict | None = None) -> Manifest:
    """Decode, validate, de-duplicate and split ``records`` into a :class:`Manifest` (see module doc).

    ``problems`` are source-level bad files (from :func:`moleport.data.sources.scan_source`),
    treated like undecodable images.
    """
    return build_split(records, seed, ratios, duplicates, skip_bad, report_path, problems, workers,
                       source).manifest
