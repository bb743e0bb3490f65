"""Evaluation data: any data source or a split manifest, as labels + lesion ids + canonical pixels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moleport.data.manifest import CLASSES
from moleport.evaluate.errors import EvaluationError
from moleport.preprocess import ImageError, load_image

CLASS_NAMES = CLASSES  # the labels a split manifest item may carry


@dataclass(frozen=True)
class EvalItem:
    """One image to evaluate (label ``melanoma``/``nevus``)."""

    path: str
    label: str
    lesion_id: str | None = None
    source: str = ""

    @property
    def y(self) -> int:
        return 1 if self.label == "melanoma" else 0


def check_items(items: list[EvalItem], where: str) -> list[EvalItem]:
    """Refuse empty data and class names other than melanoma/nevus."""
    if not items:
        raise EvaluationError(f"{where}: no images found (empty data source)")
    bad = sorted({it.label for it in items} - set(CLASS_NAMES))
    if bad:
        raise EvaluationError(f"{where}: class name(s) {bad} are not melanoma/nevus; moleport models "
                              f"only classify {list(CLASS_NAMES)}")
    return items


def _from_manifest(path: Path, split: str | None) -> list[EvalItem]:
    from moleport.data.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(path)
        chosen = manifest.split(split or "test")
    except ManifestError as exc:
        raise EvaluationError(str(exc)) from exc
    return [EvalItem(it.file, it.label, it.lesion_id, it.source) for it in chosen]


def _from_source(path: Path, preset: str | None) -> list[EvalItem]:
    from moleport.data.sources import open_source

    try:
        records = open_source(path, preset=preset)
    except (ValueError, OSError) as exc:  # the data stage raises ValueError subclasses
        raise EvaluationError(f"{path}: cannot open data source: {exc}") from exc
    return [EvalItem(str(r.path), str(r.label), getattr(r, "lesion_id", None), str(getattr(r, "source", "") or ""))
            for r in records]


def open_eval_items(source: str | Path, preset: str | None = None, split: str | None = None) -> list[EvalItem]:
    """Items of a data source (folder/CSV/preset via ``open_source``) or of a manifest split (``*.json``)."""
    p = Path(source)
    if not p.exists():
        raise EvaluationError(f"{p}: data source not found")
    if p.is_file() and p.suffix.lower() == ".json":
        items = _from_manifest(p, split)
        where = f"{p} split {split or 'test'!r}"
    else:
        if split is not None:
            raise EvaluationError(f"--split applies to a split manifest (.json), not to {p}")
        items = _from_source(p, preset)
        where = str(p)
    return check_items(items, where)


def load_pixels(items: list[EvalItem], size: int) -> np.ndarray:
    """Canonical ``size x size`` uint8 RGB pixels (:func:`moleport.preprocess.load_image`) of every item."""
    x = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, it in enumerate(items):
        try:
            x[i] = load_image(it.path, size)
        except ImageError as exc:
            raise EvaluationError(f"cannot evaluate: {exc}") from exc
    return x


def source_pixels(items: list[EvalItem], size: int, source: str | Path | None = None,
                  split: str | None = None) -> np.ndarray:
    """Pixels of ``items``; a split manifest's go through :func:`moleport.data.arrays.load_split` (shared cache)."""
    if source is None or Path(source).suffix.lower() != ".json":
        return load_pixels(items, size)
    from moleport.data.arrays import load_split
    from moleport.data.manifest import load_manifest

    arr = load_split(load_manifest(source), split or "test", size=size)
    if list(arr.files) != [it.path for it in items]:
        raise EvaluationError(f"{source}: cached split {split!r} does not match its items")
    return np.asarray(arr.x)


def labels_of(items: list[EvalItem]) -> np.ndarray:
    return np.array([it.y for it in items], dtype=np.int64)
