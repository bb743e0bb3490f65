"""Read an export bundle (``artifacts/export/<name>/manifest.json``) without the exporter's code.

The harness judges the bundle on its own: it reads the manifest, checks every file's
sha256 and size, and resolves the source checkpoint and split manifest paths.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moleport.jsonio import read_json_object
from moleport.paths import REPO_ROOT
from moleport.spec import ModelSpec, SpecError

FORMATS = ("onnx", "tflite", "coreml", "executorch")
PRECISIONS = ("fp32", "fp16", "int8")


class BundleError(ValueError):
    """The bundle folder or its manifest.json cannot be used."""


@dataclass(frozen=True)
class ArtifactFile:
    """One exported model file as manifest.json describes it."""

    path: Path  # absolute
    rel: str  # as written in manifest.json
    format: str
    precision: str
    sha256: str
    bytes: int | None = None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    entry: dict[str, Any] = field(default_factory=dict)  # the whole manifest entry

    @property
    def label(self) -> str:
        return f"{self.rel} ({self.format} {self.precision})"


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict[str, Any]
    spec: ModelSpec
    files: tuple[ArtifactFile, ...]
    checkpoint: Path | None
    split_manifest: Path | None

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.manifest.get("checkpoint_sha256") or self.manifest.get("source_checkpoint_sha256")

    def of_format(self, fmt: str) -> list[ArtifactFile]:
        return [f for f in self.files if f.format == fmt]


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 of a file; for a folder (Core ML ``.mlpackage``) the sha256 of its sorted
    ``relative/path<TAB>sha256-of-file<LF>`` lines (the bundle format's definition)."""
    p = Path(path)
    if p.is_file():
        return _file_sha256(p)
    files = sorted(q for q in p.rglob("*") if q.is_file())
    lines = "".join(f"{q.relative_to(p).as_posix()}\t{_file_sha256(q)}\n" for q in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def size_bytes(path: str | Path) -> int:
    p = Path(path)
    return p.stat().st_size if p.is_file() else sum(q.stat().st_size for q in p.rglob("*") if q.is_file())


def _resolve(value: str | None, root: Path) -> Path | None:
    """An absolute path, or one relative to the repo (then to the bundle) as the manifest allows."""
    if not value:
        return None
    p = Path(value)
    if p.is_absolute():
        return p
    for base in (REPO_ROOT, root, Path.cwd()):
        if (base / p).exists():
            return (base / p).resolve()
    return (REPO_ROOT / p).resolve()


def _artifact(entry: dict[str, Any], root: Path, where: str) -> ArtifactFile:
    missing = [k for k in ("path", "format", "precision", "sha256") if k not in entry]
    if missing:
        raise BundleError(f"{where}: missing field(s) {missing}")
    if entry["format"] not in FORMATS:
        raise BundleError(f"{where}: format {entry['format']!r} is not one of {FORMATS}")
    if entry["precision"] not in PRECISIONS:
        raise BundleError(f"{where}: precision {entry['precision']!r} is not one of {PRECISIONS}")
    return ArtifactFile(path=(root / entry["path"]).resolve(), rel=str(entry["path"]), format=entry["format"],
                        precision=entry["precision"], sha256=str(entry["sha256"]), bytes=entry.get("bytes"),
                        input=dict(entry.get("input") or {}), output=dict(entry.get("output") or {}),
                        entry=dict(entry))


def _spec(data: dict[str, Any], root: Path) -> ModelSpec:
    raw = data.get("spec")
    try:
        if isinstance(raw, dict):
            return ModelSpec.from_dict(raw, source=f"{root}/manifest.json spec")
        return ModelSpec.load(root / "spec.json")
    except SpecError as exc:
        raise BundleError(f"{root}: no usable ModelSpec ({exc})") from exc


def load_bundle(bundle_dir: str | Path) -> Bundle:
    """Parse ``bundle_dir/manifest.json`` (no file is hashed or opened here)."""
    root = Path(bundle_dir).resolve()
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise BundleError(f"{root}: not an export bundle (manifest.json not found)")
    data = read_json_object(mpath, BundleError, "bundle manifest", list_key="files")
    files = tuple(_artifact(e, root, f"{mpath} files[{i}]") for i, e in enumerate(data["files"]))
    return Bundle(root=root, manifest=data, spec=_spec(data, root), files=files,
                  checkpoint=_resolve(data.get("checkpoint") or data.get("source_checkpoint"), root),
                  split_manifest=_resolve(data.get("split_manifest"), root))


def with_overrides(bundle: Bundle, checkpoint: str | Path | None = None,
                   split_manifest: str | Path | None = None) -> Bundle:
    """The bundle with the reference checkpoint and/or split manifest given explicitly."""
    changes = {}
    if checkpoint is not None:
        changes["checkpoint"] = Path(checkpoint).resolve()
    if split_manifest is not None:
        changes["split_manifest"] = Path(split_manifest).resolve()
    return dataclasses.replace(bundle, **changes)


def verify_file(art: ArtifactFile) -> None:
    """Raise BundleError when the file is missing or its sha256/size differ from manifest.json."""
    if not art.path.exists():
        raise BundleError(f"{art.rel}: file listed in manifest.json is missing ({art.path})")
    size = size_bytes(art.path)
    if art.bytes is not None and size != int(art.bytes):
        raise BundleError(f"{art.rel}: size {size} bytes differs from manifest.json "
                          f"({art.bytes} bytes): truncated or replaced file")
    digest = sha256_file(art.path)
    if digest != art.sha256:
        raise BundleError(f"{art.rel}: sha256 mismatch: manifest.json says {art.sha256[:16]}…, "
                          f"file has {digest[:16]}… (file changed after export)")
