"""`make export`: the main job, end to end, on the embedded default data.

    synthetic dataset -> split manifest -> quick-profile MobileNet -> int8 backbone (calibration +
    quantization-aware fine-tuning on the training split) -> every export -> parity -> evaluation of the
    shipped artifact (test split + any --external data) into MODEL_CARD.md

With ``--ckpt`` (and optionally ``--data``) it exports and checks a given checkpoint instead.
Prints a summary table (format, precision, size, export status, parity) and exits non-zero
when any format failed to convert or any parity gate was violated.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from moleport.argtypes import add_dataclass_arguments, cli, dataclass_from_args, positive_float
from moleport.parity.ship import REQUIRED_PRECISIONS  # fp32/fp16 parity failures fail the job; w8/int8 are rejected
from moleport.paths import artifacts_dir
from moleport.spec import TTA_RULES
from moleport.train.config import BIAS_CORRECTION_MODES


@dataclass(frozen=True)
class PipelineConfig:
    """What one pipeline run does; ``python -m moleport.pipeline`` offers every field as an option."""

    name: str = field(default="default", metadata=cli("bundle name under artifacts/export/"))
    n: int = field(default=1000, metadata=cli("synthetic images to generate (default 1000)"))
    seed: int = 0
    ckpt: Path | None = field(default=None, metadata=cli("export this checkpoint instead of training the quick profile"))
    data: Path | None = field(default=None, metadata=cli("data source (folder) for the split manifest"))
    manifest: Path | None = field(default=None, metadata=cli("an existing split manifest"))
    #: about this many images of --data, whole lesions only, class ratio kept
    subset: int | None = field(default=None, metadata=cli("use about N images of --data (whole lesions, class ratio "
                                                          "kept)"))
    profile: str = field(default="quick", metadata=cli("training profile/run name (default: quick)"))
    epochs: int | None = field(default=None, metadata=cli("override the profile's epochs"))
    #: ModelSpec.tta of the trained model (None: the profile's); set at training, where the threshold is chosen
    tta: str | None = field(default=None, metadata=cli(
        "test-time augmentation of the trained model, averaged inside every exported graph (default: the "
        "profile's; 'none' turns it off); a --ckpt carries its own", choices=["none", *TTA_RULES]))
    parity: bool = True  # --no-parity
    limit: int | None = field(default=None, metadata=cli("parity on the first N test images only"))
    #: evaluation-only data sources (never trained or tuned on)
    externals: tuple[Path, ...] = field(default=(), metadata=cli(
        "external data source to evaluate the shipped artifact on (repeatable; never trained on)", flag="--external"))
    n_boot: int = field(default=1000, metadata=cli("bootstrap draws for the evaluation CIs", flag="--bootstrap"))
    #: quantization-aware fine-tuning steps (None: QatConfig's; 0: calibration only)
    qat_steps: int | None = field(default=None, metadata=cli(
        "quantization-aware fine-tuning steps of the int8 backbone (0: calibration only)"))
    qat_bias_correction: str | None = field(default=None, metadata=cli(
        "bias correction of the int8 backbone (moleport.models.bias_correction): off | on | auto (default: "
        "python -m moleport.train.qat's, auto: only when PTQ without it meets no validation target)",
        choices=BIAS_CORRECTION_MODES))
    qat_lr: float | None = field(default=None, metadata=cli(  # None: QatConfig's
        "learning rate of the int8 backbone's quantization-aware fine-tuning (default: QatConfig's)",
        type=positive_float))


def _step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.perf_counter()


def prepare_manifest(cfg: PipelineConfig, root: Path) -> Path:
    """The split manifest for the run: given, built from --data, or from the synthetic set."""
    from moleport.data.sources import open_source
    from moleport.data.split import lesion_subset, make_manifest
    from moleport.data.synth import generate

    if cfg.manifest is not None:
        return cfg.manifest
    source = cfg.data
    if source is None:
        source = root / "data" / f"synth-n{cfg.n}-s{cfg.seed}"
        if not (source / "metadata.csv").is_file():
            t = _step(f"generating the embedded synthetic dataset ({cfg.n} images, seed {cfg.seed})")
            generate(source, n=cfg.n, seed=cfg.seed)
            print(f"    {source} ({time.perf_counter() - t:.1f} s)")
    out = root / "splits" / f"{cfg.name}.json"
    records = lesion_subset(open_source(source), cfg.subset, cfg.seed)
    what = f"{len(records)} images (whole lesions) of {source}" if cfg.subset else str(source)
    t = _step(f"splitting {what} 60/20/20 per class")
    manifest = make_manifest(records, seed=cfg.seed)
    manifest.save(out)
    print(f"    {out}: {json.dumps(manifest.counts())} ({time.perf_counter() - t:.1f} s)")
    return out


def train_checkpoint(cfg: PipelineConfig, manifest: Path, root: Path) -> Path:
    from moleport.train.config import get_run
    from moleport.train.loop import train_run

    run = dataclasses.replace(get_run(cfg.profile), out_dir=root / "train" / f"{cfg.profile}-{cfg.name}")
    if cfg.epochs is not None:
        run = run.replace(epochs=cfg.epochs)
    if cfg.tta is not None:
        run = run.replace(tta=None if cfg.tta == "none" else cfg.tta)
    t = _step(f"training '{cfg.profile}' profile ({run.arch}, {run.epochs} epochs, batch {run.batch_size}, lr {run.lr})")
    run_dir = train_run(run, manifest)
    print(f"    {run_dir} ({time.perf_counter() - t:.1f} s)")
    return Path(run_dir) / "checkpoint.pt"


def quantize_int8(cfg: PipelineConfig, ckpt: Path, manifest: Path) -> Path:
    """The int8 backbone both int8 artifacts are lowered from: calibrated, then fine-tuned (train split only)."""
    from moleport.train.qat import QatConfig, quantize_checkpoint

    given = {"steps": cfg.qat_steps, "lr": cfg.qat_lr, "bias_correction": cfg.qat_bias_correction}
    qcfg = QatConfig(**{k: v for k, v in given.items() if v is not None})
    t = _step(f"int8 backbone: fp32-scope search by PTQ on val (calibration on the training split; bias "
              f"correction {qcfg.bias_correction}), then {qcfg.steps} quantization-aware fine-tuning steps if PTQ "
              f"misses the targets")
    res = quantize_checkpoint(ckpt, manifest, ckpt.parent / "int8", qcfg)
    print(f"    {res.program} ({time.perf_counter() - t:.1f} s)")
    return res.program


def parity_markdown(bundle: Path, parity: dict) -> Path:
    """The Markdown report that ``parity`` was written to: parity.md, or parity-partial.md for a partial run
    (``--limit``), which never replaces the full verdicts."""
    from moleport.parity.harness import FULL_STEM, PARTIAL_STEM

    return bundle / f"{PARTIAL_STEM if parity.get('partial') else FULL_STEM}.md"


def parity_verdicts(parity: dict | None) -> dict[str, bool]:
    """artifact path -> passed, from parity.json's per-artifact verdicts (every runtime row of it passed)."""
    return {path: bool(v["passed"]) for path, v in (parity or {}).get("artifacts", {}).items()}


def summarize(man: dict, parity: dict | None) -> str:
    """The summary table from the bundle's manifest.json contents and the parity report."""
    judged = (parity or {}).get("artifacts", {})
    runtimes = {path: [f"{rt}:{'pass' if ok else 'FAIL'}" for rt, ok in v["runtimes"].items()]
                for path, v in judged.items()}
    verdicts = parity_verdicts(parity)
    lines = ["| format | precision | file | size (KiB) | export | parity | ships |", "|---|---|---|---:|---|---|---|"]
    for f in man["files"]:
        ok = verdicts.get(f["path"])
        failed_label = "**FAILED**" if f["precision"] in REQUIRED_PRECISIONS else "**REJECTED**"
        ships = "-" if ok is None else ("yes" if ok else failed_label)
        lines.append(f"| {f['format']} | {f['precision']} | {f['path']} | {f['bytes'] / 1024:,.0f} | ok | "
                     f"{', '.join(runtimes.get(f['path'], [])) or '-'} | {ships} |")
    for fail in man.get("failures", []):
        lines.append(f"| {fail.get('format')} | {fail.get('precision')} | - | - | FAILED: {str(fail.get('error'))[:80]} | - | no |")
    return "\n".join(lines)


def verdict(man: dict, export_failures: list, parity: dict | None) -> tuple[bool, list[str]]:
    """(failed, messages): export failures and fp32/fp16 parity violations fail the job."""
    precision = {f["path"]: f["precision"] for f in man["files"]}
    msgs = [f"export of {f.format} {f.precision} failed: {f.error}" for f in export_failures]
    for art, ok in parity_verdicts(parity).items():
        if not ok:
            fatal = precision.get(art) in REQUIRED_PRECISIONS
            msgs.append(f"{'FAILED' if fatal else 'REJECTED (not shipped)'}: {art} violates its parity gates")
    failed = bool(export_failures) or any(m.startswith("FAILED") for m in msgs)
    return failed, msgs


def shipped_artifact(man: dict, parity: dict | None) -> str | None:
    """The artifact the Android app runs by default: parity.json's ship decision (the smallest .tflite
    that passed); without a parity run, the fp32 .tflite (else fp16, else the ONNX file)."""
    if parity is not None:
        return (parity.get("ship") or {}).get("android", {}).get("default")
    for fmt, precision in (("tflite", "fp32"), ("tflite", "fp16"), ("onnx", "fp32")):
        for f in man["files"]:
            if (f["format"], f["precision"]) == (fmt, precision):
                return f["path"]
    return None


def evaluate_shipped(bundle: Path, man: dict, parity: dict | None, manifest: Path | None,
                     externals: tuple[Path, ...], n_boot: int = 1000) -> dict | None:
    """Evaluate the shipped artifact in its runtime on the test split and each external source; write
    ``bundle/evaluation/<data>/`` and the MODEL_CARD's performance section. None when nothing ships."""
    from moleport.evaluate.evaluation import evaluate_model, write_json
    from moleport.export import card
    from moleport.runtimes.bundle import refresh_document
    from moleport.spec import ModelSpec

    rel = shipped_artifact(man, parity)
    if rel is None or (manifest is None and not externals):
        return None
    data = ([("test", manifest, "in-distribution")] if manifest is not None else []) + \
        [(Path(e).name, Path(e), "external") for e in externals]
    results, kinds = {}, {}
    for name, source, kind in data:
        res = evaluate_model(bundle / rel, source, bundle / "evaluation" / name, n_boot=n_boot)
        results[name], kinds[name] = res, kind
        lo, hi = res["auc_ci"]
        print(f"    {name} ({kind}): AUC {res['auc']:.3f} [{lo:.3f}, {hi:.3f}], sensitivity {res['sensitivity']:.3f}, "
              f"specificity {res['specificity']:.3f} at threshold {res['threshold']:.4f}")
    spec = ModelSpec.load(bundle / "spec.json")
    section = card.performance_section(rel, spec, results, kinds)
    card_path = bundle / "MODEL_CARD.md"
    card_path.write_text(card.with_performance(card_path.read_text(encoding="utf-8"), section), encoding="utf-8")
    refresh_document(bundle, "MODEL_CARD.md")  # manifest.json (and parity.json's seal) follow the new card
    keys = ("n", "counts", "threshold", "auc", "auc_ci", "sensitivity", "sensitivity_ci", "specificity",
            "specificity_ci", "ece")
    summary = {"artifact": rel, "results": {n: {"kind": kinds[n], "source": r["data"]["source"],
                                                **{k: r[k] for k in keys}} for n, r in results.items()}}
    write_json(bundle / "evaluation" / "summary.json", summary)
    return summary


def run_pipeline(cfg: PipelineConfig) -> int:
    from moleport.export.console import export_logged
    from moleport.parity.harness import run_parity

    root = artifacts_dir()
    t0 = time.perf_counter()
    manifest = prepare_manifest(cfg, root) if (cfg.ckpt is None or cfg.data or cfg.manifest) else None
    ckpt = cfg.ckpt or train_checkpoint(cfg, manifest, root)
    program = quantize_int8(cfg, ckpt, manifest) if manifest is not None else None
    bundle = root / "export" / cfg.name
    t = _step(f"exporting {ckpt} -> {bundle}")
    result = export_logged(ckpt, bundle.parent, name=cfg.name, indent="    ", manifest=manifest, force=True,
                           int8_program=program)
    print(f"    ({time.perf_counter() - t:.1f} s)")
    parity = None
    if cfg.parity:
        t = _step("parity: every artifact in its own runtime vs the PyTorch reference")
        parity = run_parity(bundle, split_manifest=manifest, limit=cfg.limit)
        print(parity_markdown(bundle, parity).read_text(encoding="utf-8"))
        print(f"    ({time.perf_counter() - t:.1f} s)")
    if cfg.externals or manifest is not None:
        t = _step("evaluating the shipped artifact (test split + external data) for MODEL_CARD.md")
        evaluate_shipped(bundle, result.manifest, parity, manifest, cfg.externals, cfg.n_boot)
        print(f"    ({time.perf_counter() - t:.1f} s)")
    print("\n" + summarize(result.manifest, parity))
    failed, msgs = verdict(result.manifest, list(result.failures), parity)
    for m in msgs:
        print(m, file=sys.stderr)
    if parity is not None:
        for v in parity["violations"]:
            print(f"  gate: {v}", file=sys.stderr)
    print(f"\nmake export: {'FAILED' if failed else 'ok'} in {time.perf_counter() - t0:.0f} s; bundle: {bundle}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moleport.pipeline", description=__doc__.splitlines()[0])
    add_dataclass_arguments(ap, PipelineConfig)
    a = ap.parse_args(argv)
    if a.subset is not None and (a.subset < 1 or a.data is None):
        ap.error("--subset N needs --data and N >= 1")
    if a.data is not None and not a.data.exists():
        ap.error(f"--data {a.data}: no such data source")
    for e in a.externals:
        if not e.exists():
            ap.error(f"--external {e}: no such data source")
    if a.ckpt is not None and a.tta is not None:
        ap.error("--tta applies to the model trained here (its val threshold is chosen through the views); "
                 "a --ckpt carries its own in its ModelSpec")
    for flag, path in (("--ckpt", a.ckpt), ("--manifest", a.manifest)):
        if path is not None and not path.is_file():
            ap.error(f"{flag} {path}: no such file")
    try:
        return run_pipeline(dataclass_from_args(PipelineConfig, a))
    except Exception as exc:  # a stage's own input error: one line naming the file, not a traceback
        if not isinstance(exc, input_errors()):
            raise
        print(f"python -m moleport.pipeline: error: {exc}", file=sys.stderr)
        return 2


def input_errors() -> tuple[type[Exception], ...]:
    """The stages' errors for bad input (a checkpoint, manifest, spec, data source or image that cannot be
    used); imported only when one is raised, as the stages themselves are."""
    from moleport.data.manifest import ManifestError
    from moleport.data.sources import SourceError
    from moleport.data.split import DataError
    from moleport.evaluate.errors import EvaluationError
    from moleport.export.bundle import ExportError
    from moleport.models.checkpoint import CheckpointError
    from moleport.preprocess import ImageError
    from moleport.runtimes.bundle import BundleError
    from moleport.spec import SpecError
    from moleport.train.config import ConfigError
    from moleport.train.qat import QatError

    return (ManifestError, SourceError, DataError, EvaluationError, ExportError, CheckpointError, ImageError,
            BundleError, SpecError, ConfigError, QatError)


if __name__ == "__main__":
    sys.exit(main())
