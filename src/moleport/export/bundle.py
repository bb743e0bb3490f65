"""``export_bundle``: one checkpoint -> every artifact + spec.json, labels.txt, manifest.json, MODEL_CARD.md.

The bundle is built in a hidden temporary folder beside the target and renamed into place, so a
crash never leaves a half-written bundle; an existing bundle is only replaced with ``force=True``.
Each (format, precision) has its own outcome: one converter failing keeps the others.
"""
from __future__ import annotations

import datetime as _dt
import logging
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

import moleport
from moleport.export import card
from moleport.export.formats import FORMATS, ExportJob, Format
from moleport.export.wrapper import with_contract
from moleport.jsonio import sha256_file, size_bytes
from moleport.spec import ModelSpec

#: Every format and the precisions it is exported in (the order is the bundle order), from the one table.
VARIANTS: dict[str, tuple[str, ...]] = {name: f.precisions for name, f in FORMATS.items()}
log = logging.getLogger(__name__)


class ExportError(ValueError):
    """Bad export input (checkpoint, manifest, target folder, calibration set); nothing was written."""


@dataclass
class Outcome:
    format: str
    precision: str
    status: str  # "ok" | "failed"
    path: str | None = None  # relative to the bundle
    error: str | None = None
    seconds: float = 0.0


@dataclass
class BundleResult:
    out_dir: Path
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.status == "ok" for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "ok"]


def parse_formats(formats: Iterable[str] | str | None) -> tuple[str, ...]:
    if formats is None:
        return tuple(FORMATS)
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    unknown = sorted(set(items) - set(FORMATS))
    if unknown or not items:
        raise ExportError(f"unknown export format(s) {unknown or items}; choose from {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def load_source(ckpt_path: str | Path):
    """Load and sanity-check the checkpoint: the model must map a normalised 1x3xSxS batch to one logit."""
    from moleport.models.checkpoint import CheckpointError, load_checkpoint

    try:
        loaded = load_checkpoint(ckpt_path, map_location="cpu")
    except CheckpointError as exc:
        raise ExportError(str(exc)) from exc
    s = loaded.spec.input_size
    try:
        with torch.no_grad():
            out = loaded.model(torch.zeros(1, 3, s, s))
    except RuntimeError as exc:
        raise ExportError(f"{ckpt_path}: spec does not fit the weights (input {s}x{s}): {exc}") from exc
    if tuple(out.shape) != (1, 1):
        raise ExportError(f"{ckpt_path}: model emits shape {tuple(out.shape)}, expected (1, 1) (one logit)")
    return loaded


def calibration_images(manifest_path: str | Path | None, spec: ModelSpec, calib_n: int,
                       ckpt_manifest_sha: str | None) -> tuple[np.ndarray | None, str | None]:
    """``calib_n`` images of the manifest's **train** split (deterministic sample) and the manifest sha256."""
    from moleport.data.arrays import load_split
    from moleport.data.manifest import ManifestError, load_manifest

    if manifest_path is None:
        return None, None
    if calib_n < 1:
        raise ExportError(f"calib_n must be >= 1, got {calib_n}")
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as exc:
        raise ExportError(str(exc)) from exc
    if ckpt_manifest_sha and manifest.sha256 != ckpt_manifest_sha:
        raise ExportError(f"{manifest_path}: split manifest sha256 {manifest.sha256[:12]}… differs from the one the "
                          f"checkpoint was trained on ({ckpt_manifest_sha[:12]}…); calibrating on it could leak test images")
    available = len(manifest.split("train"))
    if available < calib_n:
        raise ExportError(f"{manifest_path}: only {available} training images for calibration, need calib_n={calib_n}")
    x = load_split(manifest, "train", size=spec.input_size).x
    pick = np.sort(np.random.default_rng(0).choice(len(x), size=calib_n, replace=False))
    return np.ascontiguousarray(x[pick]), manifest.sha256


def _publish_file(fmt: Format, precision: str, produced: Path, stage: Path, spec: ModelSpec, seconds: float,
                  tools: dict[str, str | None]) -> dict[str, Any]:
    """Move one artifact to ``<stage>/<fmt>/`` and describe it for manifest.json."""
    target = stage / fmt.name / produced.name
    target.parent.mkdir(exist_ok=True)
    os.replace(produced, target)
    digest, size = sha256_file(target), size_bytes(target)
    inp, out = fmt.describe_io(target, spec)
    return {"path": target.relative_to(stage).as_posix(), "format": fmt.name, "precision": precision,
            "sha256": digest, "bytes": size, "input": inp, "output": out, "precision_map": fmt.precision_map(precision),
            "converter": fmt.converter(tools, precision), "seconds": seconds}


def _run_formats(formats, job: ExportJob, stage: Path, progress) -> tuple[list[Outcome], list[dict]]:
    outcomes: list[Outcome] = []
    files: list[dict] = []
    tools = card.tool_versions()
    for name in formats:
        fmt = FORMATS[name]
        work = Path(tempfile.mkdtemp(prefix=f".work-{name}-", dir=stage))
        for precision, (res, elapsed) in fmt.convert(job, work, fmt.precisions).items():
            seconds = round(elapsed, 2)
            if isinstance(res, Exception):
                log.error("export %s %s failed: %s", name, precision, res)
                outcomes.append(Outcome(name, precision, "failed", error=f"{type(res).__name__}: {res}", seconds=seconds))
                continue
            try:
                files.append(_publish_file(fmt, precision, res, stage, job.spec, seconds, tools))
                outcomes.append(Outcome(name, precision, "ok", path=files[-1]["path"], seconds=seconds))
            except Exception as exc:  # noqa: BLE001 — an unreadable artifact is this variant's failure
                shutil.rmtree(stage / name / res.name, ignore_errors=True)
                (stage / name / res.name).unlink(missing_ok=True)
                outcomes.append(Outcome(name, precision, "failed", error=f"{type(exc).__name__}: {exc}", seconds=seconds))
        shutil.rmtree(work, ignore_errors=True)
        if progress is not None:
            progress(name, [o for o in outcomes if o.format == name])
    return outcomes, files


def _write_documents(stage: Path, name: str, spec: ModelSpec, meta: dict[str, Any], ckpt_sha: str,
                     split_sha: str | None, outcomes: list[Outcome], files: list[dict]) -> dict[str, Any]:
    failures = [asdict(o) for o in outcomes if o.status != "ok"]
    spec.save(stage / "spec.json")
    (stage / "labels.txt").write_text("\n".join(spec.labels) + "\n", encoding="utf-8")
    (stage / "MODEL_CARD.md").write_text(card.model_card(name, spec, meta, files, failures), encoding="utf-8")
    for entry in files:  # every file inside a folder artifact (.mlpackage), so a consumer can name a changed one
        art = stage / entry["path"]
        if art.is_dir():
            entry["files"] = [_document(stage, q) for q in sorted(q for q in art.rglob("*") if q.is_file())]
    documents = [_document(stage, stage / rel) for rel in ("MODEL_CARD.md", "labels.txt", "spec.json")]
    manifest = {
        "name": name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "moleport_version": moleport.__version__, "spec": spec.to_dict(), "input_contract": spec.export_input,
        "checkpoint": meta.get("checkpoint_path"), "split_manifest": meta.get("split_manifest_path"),
        "source_checkpoint_sha256": ckpt_sha, "split_manifest_sha256": split_sha,
        "trained_on_manifest_sha256": meta.get("manifest_sha256"), "tools": card.tool_versions(),
        "int8_program": meta.get("int8_program"),
        "files": files, "documents": documents, "outcomes": [asdict(o) for o in outcomes], "failures": failures,
    }
    (stage / "manifest.json").write_text(card.dumps(manifest), encoding="utf-8")
    return manifest


def _document(stage: Path, path: Path) -> dict[str, Any]:
    """``{path (relative to the bundle), sha256, bytes}`` of one file, as manifest.json lists it."""
    digest, size = sha256_file(path), size_bytes(path)
    return {"path": path.relative_to(stage).as_posix(), "sha256": digest, "bytes": size}


def clean_stale_stages(parent: Path, name: str) -> list[Path]:
    """Remove what a killed export of ``name`` left in ``parent``: ``.NAME.tmp-*`` stage folders (with their
    ``.work-*`` converter folders) whose exporting process is gone. Returns the folders removed."""
    from moleport.export.leftovers import remove_stale

    return remove_stale(parent, f".{name}.tmp-")


def _int8_program_record(program: str | Path | None) -> dict[str, Any] | None:
    """manifest.json's record of the quantization-aware backbone (path, sha256, and its qat.json report)."""
    if program is None:
        return None
    p = Path(program)
    if not p.is_file():
        raise ExportError(f"{p}: int8 backbone program not found (moleport.train.qat writes it)")
    digest = sha256_file(p)
    report = p.with_name("qat.json")
    record = {"path": str(p.resolve()), "sha256": digest, "report": str(report.resolve()) if report.is_file() else None}
    if report.is_file():  # which layers the program keeps fp32, for the int8 files' precision_map
        try:
            qat = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExportError(f"{report}: unreadable int8 backbone report ({exc})") from exc
        record.update(scope=qat.get("scope"), quantized_layers=qat.get("quantized_layers"))
    return record


def _int8_precision_map(entry: dict[str, Any], program: dict[str, Any] | None) -> dict[str, Any]:
    """The int8 file's precision_map, naming the backbone layers its int8 program keeps fp32."""
    from moleport.models.quant import Scope

    scope = Scope(**((program or {}).get("scope") or {}))
    kept = (["the classifier Linear (output: the logit)"] if scope.float_classifier else []) + (
        [f"feature blocks 0-{scope.float_blocks - 1} (stem conv first)"] if scope.float_blocks else [])
    backbone = entry["precision_map"]["backbone"] + (f"; fp32: {', '.join(kept)}" if kept else "")
    return {**entry["precision_map"], "backbone": backbone,
            "int8_layers": (program or {}).get("quantized_layers")}


def _publish(stage: Path, target: Path, force: bool) -> None:
    """Rename the finished ``stage`` folder to ``target`` (replacing it atomically when ``force``)."""
    if not target.exists():
        os.rename(stage, target)
        return
    if not force:
        raise ExportError(f"{target} already exists; pass force=True (--force) to replace it")
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / target.name)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old / target.name, target)  # put the previous bundle back
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_bundle(ckpt_path: str | Path, out_dir: str | Path, *, manifest: str | Path | None = None,
                  formats: Iterable[str] | str | None = None, force: bool = False, calib_n: int = 300,
                  name: str | None = None, progress: Callable[[str, list[Outcome]], None] | None = None,
                  int8_program: str | Path | None = None) -> BundleResult:
    """Export the checkpoint to ``out_dir/<name>/`` (``name`` defaults to the architecture).

    ``manifest`` is the split manifest whose **train** split calibrates the int8 variants (required
    when tflite or executorch is requested). ``int8_program`` is the quantization-aware int8 backbone
    (``moleport.train.qat``); without it the int8 variants are post-training quantized on those images. Bad input raises :class:`ExportError` before anything
    is written; converter failures are recorded per variant in the result and manifest.json.
    """
    fmts = parse_formats(formats)
    loaded = load_source(ckpt_path)
    name = name or loaded.spec.architecture
    if not name or "/" in name or name.startswith("."):
        raise ExportError(f"invalid bundle name {name!r}")
    target = Path(out_dir) / name
    if target.exists() and not force:
        raise ExportError(f"{target} already exists; pass force=True (--force) to replace it")
    needs_calib = any("int8" in VARIANTS[f] for f in fmts)
    if needs_calib and manifest is None:
        raise ExportError("int8 TFLite/ExecuTorch need calibration images: pass the split manifest (--manifest)")
    calib, split_sha = calibration_images(manifest, loaded.spec, calib_n, loaded.meta.get("manifest_sha256"))
    spec = with_contract(loaded.spec)
    meta = dict(loaded.meta, checkpoint_sha256=sha256_file(ckpt_path), checkpoint_path=str(Path(ckpt_path).resolve()),
                split_manifest_path=str(Path(manifest).resolve()) if manifest is not None else None,
                int8_program=_int8_program_record(int8_program))
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_stages(target.parent, name)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        job = ExportJob(model=loaded.model, spec=spec, name=name, meta=meta, calib=calib,
                        int8_program=Path(int8_program) if int8_program is not None else None)
        outcomes, files = _run_formats(fmts, job, stage, progress)
        for entry in files:
            if entry["precision"] == "int8":
                entry["precision_map"] = _int8_precision_map(entry, meta["int8_program"])
            elif (entry["format"], entry["precision"]) == ("coreml", "w8"):
                entry["precision_map"] = {**entry["precision_map"], "bias_correction": job.w8_model()[1]}
        doc = _write_documents(stage, name, spec, meta, meta["checkpoint_sha256"], split_sha, outcomes, files)
        _publish(stage, target, force)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return BundleResult(out_dir=target, name=name, outcomes=outcomes, manifest=doc)
