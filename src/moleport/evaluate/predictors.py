"""Models to evaluate: a checkpoint (PyTorch) or an exported artifact run in its own runtime.

Artifacts go through the parity runners (never through the exporter's code) with the
ModelSpec from the bundle's ``spec.json``. Before any image is read the spec is checked
against what :mod:`moleport.preprocess` can reproduce.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from moleport.evaluate.errors import EvaluationError
from moleport.jsonio import read_json_object
from moleport.spec import LABELS, RESIZE_RULE, ModelSpec, SpecError

#: artifact suffix -> (manifest format, runner module)
ARTIFACT_FORMATS = MappingProxyType({
    ".onnx": ("onnx", "moleport.parity.runners.onnxruntime"),
    ".tflite": ("tflite", "moleport.parity.runners.litert"),
    ".pte": ("executorch", "moleport.parity.runners.executorch"),
    ".mlpackage": ("coreml", "moleport.parity.runners.coreml"),
    ".mlmodel": ("coreml", "moleport.parity.runners.coreml"),
})
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


@dataclass
class Predictor:
    """A loaded model: its spec, a description, and ``predict(uint8 NHWC) -> P(melanoma)``."""

    spec: ModelSpec
    kind: str  # "checkpoint" or the artifact format
    path: Path
    runner: object

    def predict(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        out = [self.runner.predict(np.ascontiguousarray(x[i:i + batch])) for i in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros(0)


def check_spec(spec: ModelSpec, where: str) -> None:
    """Raise when the spec asks for preprocessing :mod:`moleport.preprocess` does not implement."""
    if spec.resize_rule != RESIZE_RULE:
        raise EvaluationError(f"{where}: spec resize_rule {spec.resize_rule!r} is unknown to moleport.preprocess "
                              f"(it implements {RESIZE_RULE!r}); the data cannot be preprocessed as the model expects")
    if set(spec.labels) != set(LABELS):
        raise EvaluationError(f"{where}: spec labels {list(spec.labels)} are not {list(LABELS)}")
    declared = (spec.export_input or {}).get("size")
    if declared and list(declared) != [spec.input_size, spec.input_size]:
        raise EvaluationError(f"{where}: spec input_size {spec.input_size} disagrees with its export_input "
                              f"size {declared}")


def _checkpoint_predictor(path: Path, threads: int) -> Predictor:
    from moleport.models.checkpoint import CheckpointError, load_checkpoint
    from moleport.parity.runners.torch_ref import TorchReferenceRunner

    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        raise EvaluationError(str(exc)) from exc
    spec = loaded.spec
    check_spec(spec, str(path))
    legacy = (loaded.meta.get("extra") or {}).get("color_constancy")
    if legacy and legacy != spec.color_constancy:
        raise EvaluationError(f"{path}: trained with colour-constancy rule {legacy!r} recorded outside its ModelSpec "
                              f"(an early ablation checkpoint); moleport no longer implements that rule, so it "
                              f"cannot be evaluated as trained; retrain with the spec's color_constancy option")
    return Predictor(spec, "checkpoint", path, TorchReferenceRunner(path, spec, threads=threads))


def bundle_root(path: Path) -> Path:
    """The export bundle holding ``path``: the nearest folder above it with a spec.json (artifacts
    sit in ``<bundle>/<format>/``, or beside spec.json in a flat copy)."""
    for folder in list(path.resolve().parents)[:3]:
        if (folder / "spec.json").is_file():
            return folder
    raise EvaluationError(f"{path}: no spec.json beside the artifact or in its bundle folder; "
                          "evaluate artifacts inside their export bundle")


def _bundle_spec(path: Path) -> ModelSpec:
    spec_path = bundle_root(path) / "spec.json"
    try:
        return ModelSpec.load(spec_path)
    except SpecError as exc:
        raise EvaluationError(f"{spec_path}: {exc}") from exc


def _artifact_entry(path: Path, fmt: str):
    """The bundle's manifest entry for ``path`` when manifest.json lists it, else a bare one."""
    from moleport.parity.bundle import ArtifactFile

    root = bundle_root(path)
    mpath = root / "manifest.json"
    entries = read_json_object(mpath, EvaluationError, "bundle manifest").get("files", []) if mpath.is_file() else []
    for e in entries:
        if (root / str(e.get("path", ""))).resolve() == path.resolve():
            return ArtifactFile(path=path.resolve(), rel=str(e["path"]), format=e.get("format", fmt),
                                precision=e.get("precision", "fp32"), sha256=str(e.get("sha256", "")),
                                bytes=e.get("bytes"), input=dict(e.get("input") or {}),
                                output=dict(e.get("output") or {}), entry=dict(e))
    return ArtifactFile(path=path.resolve(), rel=path.name, format=fmt, precision="fp32", sha256="")


def _artifact_predictor(path: Path, threads: int) -> Predictor:
    from moleport.parity.bundle import Bundle

    fmt, module = ARTIFACT_FORMATS[path.suffix.lower()]
    spec = _bundle_spec(path)
    check_spec(spec, str(path))
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise EvaluationError(f"{path}: no {fmt} runner in this checkout ({module}: {exc})") from exc
    if not mod.available():
        raise EvaluationError(f"{path}: the {mod.RUNTIME} runtime is not available on this machine")
    art = _artifact_entry(path, fmt)
    bundle = Bundle(root=bundle_root(path), manifest={}, spec=spec, files=(art,), checkpoint=None,
                    split_manifest=None)
    runners = mod.runners_for(bundle)
    if len(runners) != 1:
        raise EvaluationError(f"{path}: the {fmt} runner module offered {len(runners)} runners, expected 1")
    return Predictor(spec, fmt, path, runners[0])


def load_predictor(model: str | Path, threads: int = 2) -> Predictor:
    """A :class:`Predictor` for a checkpoint (``.pt``) or an artifact (``.onnx/.tflite/.pte/.mlpackage``)."""
    p = Path(model)
    if not p.exists():
        raise EvaluationError(f"{p}: model not found")
    suffix = p.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return _checkpoint_predictor(p, threads)
    if suffix in ARTIFACT_FORMATS:
        return _artifact_predictor(p, threads)
    raise EvaluationError(f"{p}: unknown model type {suffix!r}; expected a checkpoint "
                          f"{list(CHECKPOINT_SUFFIXES)} or an artifact {sorted(ARTIFACT_FORMATS)}")
