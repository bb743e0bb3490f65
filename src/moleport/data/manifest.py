"""The split manifest: the one list of files that training, calibration and parity share.

JSON layout (``version`` 1)::

    {"version": 1, "seed": 0, "source": {...free-form description...},
     "ratios": [0.6, 0.2, 0.2],
     "items": [{"file": "/abs/path.png", "sha256": "<sha256 of the decoded RGB pixels>",
                "label": "melanoma" | "nevus", "split": "train" | "val" | "test",
                "lesion_id": "HAM_0001" | null, "source": "synthetic" | "ham10000" | ...}, ...]}

``Manifest.sha256`` hashes the items (file, sha256, label, split) so checkpoints and
exports can record exactly which split they saw.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moleport.jsonio import read_json_object, write_json_atomic
from moleport.spec import LABELS

SPLITS = ("train", "val", "test")
#: The class names an item's ``label`` may carry (class folders, metadata.csv diagnoses mapped to them), in the
#: order the manifest's ``counts`` list them: the model's :data:`moleport.spec.LABELS` (its output order,
#: ``("nevus", "melanoma")``), alphabetical.
CLASSES: tuple[str, ...] = tuple(sorted(LABELS))


class ManifestError(ValueError):
    """A split manifest is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Item:
    file: str
    sha256: str
    label: str
    split: str
    lesion_id: str | None = None
    source: str = ""

    @property
    def y(self) -> int:
        """1 for melanoma, 0 for nevus."""
        return 1 if self.label == "melanoma" else 0


@dataclass(frozen=True)
class Manifest:
    items: tuple[Item, ...]
    seed: int = 0
    source: dict[str, Any] = field(default_factory=dict)
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    version: int = 1

    def split(self, name: str) -> list[Item]:
        if name not in SPLITS:
            raise ManifestError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [it for it in self.items if it.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        out = {s: {lab: 0 for lab in CLASSES} for s in SPLITS}
        for it in self.items:
            out[it.split][it.label] += 1
        return out

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for it in sorted(self.items, key=lambda i: (i.split, i.file)):
            h.update(f"{it.split}\t{it.label}\t{it.sha256}\t{Path(it.file).name}\n".encode())
        return h.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "seed": self.seed, "source": self.source,
                "ratios": list(self.ratios), "sha256": self.sha256,
                "counts": self.counts(), "items": [asdict(i) for i in self.items]}

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file in the same folder, then rename)."""
        try:
            data = self.to_dict()
        except UnicodeEncodeError as exc:
            raise ManifestError(f"{path}: an item's file name is not valid UTF-8 ({exc.reason}); "
                                f"nothing was written") from exc
        return write_json_atomic(path, data, ManifestError, "split manifest")


def _item(d: dict[str, Any], where: str) -> Item:
    missing = [k for k in ("file", "sha256", "label", "split") if k not in d]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    if d["label"] not in CLASSES:
        raise ManifestError(f"{where}: label {d['label']!r} is not one of {CLASSES}")
    if d["split"] not in SPLITS:
        raise ManifestError(f"{where}: split {d['split']!r} is not one of {SPLITS}")
    return Item(file=str(d["file"]), sha256=str(d["sha256"]), label=d["label"], split=d["split"],
                lesion_id=d.get("lesion_id"), source=str(d.get("source", "")))


def load_manifest(path: str | Path) -> Manifest:
    p = Path(path)
    data = read_json_object(p, ManifestError, "split manifest", list_key="items")
    items = tuple(_item(d, f"{p} item {i}") for i, d in enumerate(data["items"]))
    m = Manifest(items=items, seed=int(data.get("seed", 0)), source=data.get("source", {}),
                 ratios=tuple(data.get("ratios", (0.6, 0.2, 0.2))), version=int(data.get("version", 1)))
    if "sha256" in data and data["sha256"] != m.sha256:
        raise ManifestError(f"{p}: recorded sha256 does not match its items (edited by hand?)")
    return m
