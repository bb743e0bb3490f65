"""Models to evaluate: a checkpoint (PyTorch) or an exported artifact run in its own runtime.

Artifacts go through the runners of :mod:`moleport.runtimes` (never through the exporter's code) with the
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
from moleport.spec import LABELS, RESIZE_RULE, ModelSpec, SpecError

#: artifact suffix -> (manifest format, runner module)
ARTIFACT_FORMATS = MappingProxyType({
    ".onnx": ("onnx", "moleport.runtimes.onnxruntime"),
    ".tflite": ("tflite", "moleport.runtimes.litert"),
    ".pte": ("executorch", "moleport.runtimes.executorch"),
    ".mlpackage": ("coreml", "moleport.runtimes.coreml"),
    ".mlmodel": ("coreml", "moleport.runtimes.coreml"),
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
        """P(melanoma); a runtime failure is an :class:`EvaluationError` naming the model, never a traceback."""
        from moleport.runtimes.base import RunnerError

        try:
            out = [self.runner.predict(np.ascontiguousarray(x[i:i + batch])) for i in range(0, len(x), batch)]
        except RunnerError as exc:
            raise EvaluationError(f"{self.path}: {exc}") from exc
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
    from moleport.runtimes.torch_ref import TorchReferenceRunner

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


def _verified_entry(path: Path, fmt: str):
    """The bundle's manifest entry for ``path`` after checking the whole bundle: manifest.json's ``documents``
    (spec.json, labels.txt, MODEL_CARD.md), this artifact's sha256/size (every file of an .mlpackage), and —
    when parity.json records it — that manifest.json is the one parity judged."""
    from moleport.runtimes.bundle import BundleError, check_parity_seal, load_bundle, verify_documents, verify_file

    root = bundle_root(path)
    if not (root / "manifest.json").is_file():
        raise EvaluationError(f"{root}: no manifest.json beside spec.json, so {path.name} and spec.json cannot be "
                              f"verified; use the artifact inside its export bundle")
    try:
        bundle = load_bundle(root)
        art = next((a for a in bundle.files if a.path == path.resolve()), None)
        if art is None:
            raise BundleError(f"{path}: not listed in {root}/manifest.json (not part of this bundle)")
        if art.format != fmt:
            raise BundleError(f"{art.rel}: manifest.json says format {art.format!r}, the file name says {fmt!r}")
        verify_documents(bundle)
        verify_file(art)
        check_parity_seal(bundle)
    except BundleError as exc:
        raise EvaluationError(f"{root}: refusing the bundle: {exc}") from exc
    return art


def _warm_up(runner, path: Path, spec: ModelSpec) -> None:
    """Load the runtime and run one image inside the runner's error handling, so a truncated or corrupt
    artifact is refused here with a clear error, not at the first real batch."""
    from moleport.runtimes.base import RunnerError

    s = spec.input_size
    try:
        runner.predict(np.zeros((1, s, s, 3), dtype=np.uint8))
    except RunnerError as exc:
        msg = str(exc)
        raise EvaluationError(msg if str(path) in msg else f"{path}: {msg}") from exc


def _artifact_predictor(path: Path, threads: int) -> Predictor:
    fmt, module = ARTIFACT_FORMATS[path.suffix.lower()]
    spec = _bundle_spec(path)
    check_spec(spec, str(path))
    art = _verified_entry(path, fmt)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise EvaluationError(f"{path}: no {fmt} runner in this checkout ({module}: {exc})") from exc
    if not mod.available():
        raise EvaluationError(f"{path}: the {mod.RUNTIME} runtime is not available on this machine")
    runner = mod.runner(art, spec, threads=threads)
    _warm_up(runner, path, spec)
    return Predictor(spec, fmt, path, runner)


def mean_logit_probability(probabilities: list[np.ndarray]) -> np.ndarray:
    """``sigmoid(mean of the logits)`` of several P(melanoma) arrays of one batch."""
    eps = 1e-12
    logits = []
    for p in probabilities:
        p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
        logits.append(np.log(p) - np.log1p(-p))
    return 1.0 / (1.0 + np.exp(-np.mean(logits, axis=0)))


class EnsembleRunner:
    """P(melanoma) of several models as ``sigmoid(mean of their logits)`` (each model's own temperature applied)."""

    def __init__(self, members: list[Predictor]):
        self.members = members

    def predict(self, x: np.ndarray) -> np.ndarray:
        return mean_logit_probability([m.runner.predict(x) for m in self.members])


class TtaRunner:
    """Test-time augmentation outside the model: P(melanoma) as ``sigmoid(mean of the logits)`` over the views of
    :func:`moleport.preprocess.tta_views` (each view run through ``runner`` as it is, temperature included)."""

    def __init__(self, runner, rule: str):
        from moleport.spec import TTA_RULES

        if rule not in TTA_RULES:
            raise EvaluationError(f"--tta must be one of {', '.join(TTA_RULES)}, got {rule!r}")
        self.runner, self.rule = runner, rule

    def predict(self, x: np.ndarray) -> np.ndarray:
        from moleport.preprocess import tta_views

        return mean_logit_probability([self.runner.predict(v) for v in tta_views(x, self.rule)])


def with_tta(pred: Predictor, rule: str | None) -> Predictor:
    """``pred`` with its logits averaged over the views of ``rule`` (None: ``pred`` itself)."""
    if rule is None:
        return pred
    if pred.spec.tta is not None:
        raise EvaluationError(f"{pred.path}: its ModelSpec already averages the {pred.spec.tta} views (tta); "
                              f"--tta would average views of views")
    return Predictor(pred.spec, f"{pred.kind} + test-time augmentation {rule}", pred.path, TtaRunner(pred.runner, rule))


def _ensemble_predictor(models: list[str | Path], threads: int) -> Predictor:
    """One :class:`Predictor` averaging the logits of ``models`` (all at one input size). Its spec is the first
    model's with ``architecture`` naming the members and threshold 0.5: choose one on val (--target-sensitivity)."""
    members = [load_predictor(m, threads) for m in models]
    sizes = {m.spec.input_size for m in members}
    if len(sizes) > 1:
        raise EvaluationError(f"cannot average models of different input sizes: "
                              f"{', '.join(f'{m.path} ({m.spec.input_size})' for m in members)}")
    name = "ensemble(" + ", ".join(m.spec.architecture for m in members) + ")"
    spec = members[0].spec.replace(architecture=name, threshold=0.5, temperature=1.0)
    return Predictor(spec, f"ensemble of {len(members)}", members[0].path, EnsembleRunner(members))


def load_predictor(model, threads: int = 2, tta: str | None = None) -> Predictor:
    """A :class:`Predictor` for a checkpoint (``.pt``) or an artifact (``.onnx/.tflite/.pte/.mlpackage``); for a
    list of two or more of them, their logit average (:class:`EnsembleRunner`); with ``tta``, that predictor's
    logits averaged over the rule's views (:class:`TtaRunner`)."""
    if tta is not None:
        return with_tta(load_predictor(model, threads), tta)
    if isinstance(model, (list, tuple)):
        if len(model) > 1:
            return _ensemble_predictor(list(model), threads)
        model = model[0]
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
