"""Read an export bundle (``artifacts/export/<name>/manifest.json``) without the exporter's code.

The harness judges the bundle on its own: it reads the manifest, checks every file's
sha256 and size, and resolves the source checkpoint and split manifest paths.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moleport.jsonio import read_json_object, sha256_file, size_bytes
from moleport.paths import REPO_ROOT
from moleport.spec import ModelSpec, SpecError

FORMATS = ("onnx", "tflite", "coreml", "executorch")
PRECISIONS = ("fp32", "fp16", "w8", "int8")


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
    """Parse ``bundle_dir/manifest.json`` (no file is hashed or opened here; :func:`verify` /
    :func:`load_verified` check every file it lists)."""
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
    if art.path.is_dir():
        _verify_package_files(art)  # names the changed file inside an .mlpackage
    size = size_bytes(art.path)
    if art.bytes is not None and size != int(art.bytes):
        raise BundleError(f"{art.rel}: size {size} bytes differs from manifest.json "
                          f"({art.bytes} bytes): truncated or replaced file")
    digest = sha256_file(art.path)
    if digest != art.sha256:
        raise BundleError(f"{art.rel}: sha256 mismatch: manifest.json says {art.sha256[:16]}…, "
                          f"file has {digest[:16]}… (file changed after export)")


# --- every file a consumer reads --------------------------------------------------------------
#: Documents every bundle must list in manifest.json ``documents`` (the apps and the harness read them).
REQUIRED_DOCUMENTS = ("spec.json", "labels.txt")
PARITY_SEAL_KEY = "manifest_sha256"  # parity.json's record of the manifest.json it judged


def manifest_digest(bundle_dir: str | Path) -> str:
    """sha256 of the bundle's manifest.json bytes (what parity.json records as ``manifest_sha256``)."""
    return sha256_file(Path(bundle_dir) / "manifest.json")


def _check_one(path: Path, rel: str, sha: str, size: Any, where: str) -> None:
    if not path.is_file():
        raise BundleError(f"{rel}: listed in {where} but missing ({path})")
    got = path.stat().st_size
    if size is not None and got != int(size):
        raise BundleError(f"{rel}: size {got} bytes differs from {where} ({size} bytes): file changed after export")
    digest = sha256_file(path)
    if digest != sha:
        raise BundleError(f"{rel}: sha256 mismatch: {where} says {str(sha)[:16]}…, file has {digest[:16]}… "
                          f"(file changed after export)")


def _entry_list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(e, dict) and "path" in e and "sha256" in e for e in value):
        raise BundleError(f"{where}: must be a list of {{path, sha256, bytes}} objects")
    return value


def verify_documents(bundle: Bundle) -> None:
    """Check every entry of manifest.json ``documents`` (spec.json, labels.txt, MODEL_CARD.md, ...) and that
    spec.json says what manifest.json's ``spec`` says; raise :class:`BundleError` naming the file."""
    where = f"{bundle.root}/manifest.json"
    if "documents" not in bundle.manifest:
        raise BundleError(f"{where}: no 'documents' list, so spec.json and labels.txt cannot be verified "
                          f"(bundle exported by an older moleport); re-export it")
    docs = _entry_list(bundle.manifest["documents"], f"{where} documents")
    listed = {str(d["path"]) for d in docs}
    missing = [d for d in REQUIRED_DOCUMENTS if d not in listed]
    if missing:
        raise BundleError(f"{where}: documents does not list {missing}; the bundle cannot be verified")
    for d in docs:
        rel = str(d["path"])
        path = (bundle.root / rel).resolve()
        if bundle.root not in path.parents:
            raise BundleError(f"{where}: document path {rel!r} points outside the bundle")
        _check_one(path, rel, str(d["sha256"]), d.get("bytes"), "manifest.json documents")
    raw = bundle.manifest.get("spec")
    if isinstance(raw, dict):
        try:
            on_disk = ModelSpec.load(bundle.root / "spec.json")
            declared = ModelSpec.from_dict(raw, source=f"{where} spec")
        except SpecError as exc:
            raise BundleError(f"{bundle.root / 'spec.json'}: {exc}") from exc
        if on_disk.to_dict() != declared.to_dict():
            raise BundleError(f"spec.json: differs from manifest.json's spec (threshold {on_disk.threshold} vs "
                              f"{declared.threshold}, temperature {on_disk.temperature} vs {declared.temperature})")


def _verify_package_files(art: ArtifactFile) -> None:
    """An artifact folder (.mlpackage): every file inside as listed in its entry's ``files``, nothing more."""
    entries = art.entry.get("files")
    if entries is None:
        return
    entries = _entry_list(entries, f"manifest.json entry {art.rel} files")
    root = art.path.parents[len(Path(art.rel).parts) - 1]  # the bundle folder: entry paths are relative to it
    listed = {str(e["path"]) for e in entries}
    present = {q.relative_to(root).as_posix() for q in art.path.rglob("*") if q.is_file()} if art.path.is_dir() else set()
    extra = sorted(present - listed)
    if extra:
        raise BundleError(f"{art.rel}: holds file(s) not in manifest.json: {extra[:5]} (added after export)")
    for e in entries:
        _check_one(root / str(e["path"]), str(e["path"]), str(e["sha256"]), e.get("bytes"),
                   f"manifest.json entry {art.rel}")


def check_parity_seal(bundle: Bundle) -> None:
    """When parity.json records the manifest.json it judged, the manifest must still be that one."""
    ppath = bundle.root / "parity.json"
    if not ppath.is_file():
        return
    sealed = read_json_object(ppath, BundleError, "parity report").get(PARITY_SEAL_KEY)
    if sealed and sealed != manifest_digest(bundle.root):
        raise BundleError(f"manifest.json: sha256 differs from the one parity.json judged ({str(sealed)[:16]}…): "
                          f"manifest.json changed after parity; re-run `moleport parity`")


def verify(bundle: Bundle, *, artifacts: bool = True, parity_seal: bool = False) -> Bundle:
    """Verify the whole bundle before use: documents, every artifact (and every file in an .mlpackage),
    and with ``parity_seal`` that manifest.json is the one parity.json judged. Returns ``bundle``."""
    verify_documents(bundle)
    if artifacts:
        for art in bundle.files:
            verify_file(art)
    if parity_seal:
        check_parity_seal(bundle)
    return bundle


def load_verified(bundle_dir: str | Path, *, parity_seal: bool = False) -> Bundle:
    """:func:`load_bundle` + :func:`verify`; the spec is then the verified spec.json."""
    return verify(load_bundle(bundle_dir), parity_seal=parity_seal)


def document_entry(bundle_dir: str | Path, rel_path: str) -> dict[str, Any]:
    """``{path, sha256, bytes}`` of one file of the bundle, as manifest.json ``documents`` lists it."""
    p = Path(bundle_dir) / rel_path
    if not p.is_file():
        raise BundleError(f"{p}: not found")
    return {"path": Path(rel_path).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def refresh_document(bundle_dir: str | Path, rel_path: str) -> dict[str, Any]:
    """Re-record one document (e.g. MODEL_CARD.md rewritten after export) in manifest.json ``documents``.

    The other documents must still verify (a tampered bundle is not re-sealed); manifest.json is rewritten
    atomically, and parity.json's ``manifest_sha256`` is moved along when it sealed the previous manifest."""
    import json

    from moleport.jsonio import write_text_atomic

    root = Path(bundle_dir).resolve()
    bundle = load_bundle(root)
    entry = document_entry(root, rel_path)
    docs = [d for d in bundle.manifest.get("documents") or [] if isinstance(d, dict) and d.get("path") != entry["path"]]
    for d in docs:
        _check_one(root / str(d["path"]), str(d["path"]), str(d["sha256"]), d.get("bytes"), "manifest.json documents")
    before = manifest_digest(root)
    manifest = dict(bundle.manifest, documents=sorted(docs + [entry], key=lambda d: d["path"]))
    write_text_atomic(root / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n",
                      BundleError, "bundle manifest")
    ppath = root / "parity.json"
    if ppath.is_file():
        report = read_json_object(ppath, BundleError, "parity report")
        if report.get(PARITY_SEAL_KEY) == before:
            report[PARITY_SEAL_KEY] = manifest_digest(root)
            write_text_atomic(ppath, json.dumps(report, indent=1, allow_nan=False) + "\n", BundleError, "parity report")
    return entry
