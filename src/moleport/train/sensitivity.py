"""Where the int8 error comes from: fake-quantize one part of the backbone at a time and measure on val.

``python -m moleport.train.sensitivity CKPT --manifest SPLIT [--out FILE.json] [--per-layer]``

The checkpoint's backbone (batch-norm folded into the convs, as every int8 export does) is run eager in fp32 on
``val_n`` validation images, with int8 fake quantization switched on for one part at a time, in the scheme of
the int8 export (:mod:`moleport.models.quant`): weights symmetric int8 per output channel, activations int8 per
tensor with ranges from a histogram observer calibrated on ``calib_n`` TRAINING images. Each part is judged as
the scope search of :mod:`moleport.train.qat` judges a whole int8 backbone: p99 / max / mean |Δp| and flips at the
spec's threshold against the fp32 model (:func:`moleport.train.qat.agreement`).

Parts: everything at once, then each feature block and the classifier whole (weights, inputs and outputs of its
convs/linears: what :class:`moleport.models.quant.Scope` keeps fp32 or not), and with ``--per-layer`` each conv /
linear's input, weights and output alone. The README's int8 decomposition table is this command's output.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from moleport.argtypes import cli
from moleport.models.int8_sim import SITES, calibrate, fake_quantized, fold_batch_norm, quantized_layers
from moleport.train.qat import QatError, agreement, calibration_images, inputs, logits


@dataclass(frozen=True)
class SensitivityConfig:
    """How much data the decomposition sees (each part is one pass over ``val_n`` images)."""

    calib_n: int = field(default=128, metadata=cli("training images that calibrate the activation ranges"))
    val_n: int = field(default=200, metadata=cli("validation images each part is judged on"))
    per_layer: bool = field(default=False, metadata=cli("also each conv/linear's input, weights and output alone"))
    seed: int = field(default=0, metadata=cli("seed of the calibration images"))

    def __post_init__(self) -> None:
        if self.calib_n < 1 or self.val_n < 2:
            raise QatError(f"invalid sensitivity config {self}: calib_n >= 1, val_n >= 2")


def parts_to_measure(layers: dict[str, nn.Module], per_layer: bool) -> list[tuple[str, set[tuple[str, str]]]]:
    """(label, parts): everything, each top-level block (``features.i``, ``classifier``), then per layer x site."""
    everything = {(n, s) for n in layers for s in SITES}
    groups: dict[str, set] = {}
    for n in layers:
        key = ".".join(n.split(".")[:2]) if n.startswith("features.") else n.split(".")[0]
        groups.setdefault(key, set()).update((n, s) for s in SITES)
    out = [("everything", everything)] + [(f"{k} (whole)", v) for k, v in groups.items()]
    if per_layer:
        out += [(f"{n} {s}", {(n, s)}) for n in layers for s in SITES]
    return out


def decompose(ckpt_path: str | Path, manifest_path: str | Path, cfg: SensitivityConfig = SensitivityConfig()
              ) -> dict:
    """Every part's agreement with the fp32 model on val (see the module docstring)."""
    from moleport.data.arrays import load_split
    from moleport.data.manifest import load_manifest
    from moleport.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt_path)
    spec, teacher = loaded.spec, loaded.model.eval()
    manifest = load_manifest(manifest_path)
    train_x = load_split(manifest, "train", size=spec.input_size).x
    val_x = load_split(manifest, "val", size=spec.input_size).x[:cfg.val_n]
    calib = calibration_images(train_x, cfg.calib_n, cfg.seed)
    model = fold_batch_norm(teacher)
    layers = quantized_layers(model)
    observers = calibrate(model, layers, (inputs(calib[i:i + 32], spec) for i in range(0, len(calib), 32)))
    reference = logits(teacher, val_x, spec)
    rows, t0 = [], time.perf_counter()
    for label, parts in parts_to_measure(layers, cfg.per_layer):
        with fake_quantized(model, layers, parts, observers):
            row = agreement(logits(model, val_x, spec), reference, spec.threshold)
        rows.append({"part": label, **row})
        print(f"    {label:<28} p99 |Δp| {row['p99_abs_dp']:.4f}  max {row['max_abs_dp']:.4f}  flips "
              f"{row['flips']}/{row['n']}", file=sys.stderr, flush=True)
    folded_error = agreement(logits(model, val_x, spec), reference, spec.threshold)["max_abs_dp"]
    return {"checkpoint": str(Path(ckpt_path).resolve()), "manifest": str(Path(manifest_path).resolve()),
            "config": asdict(cfg), "threshold": spec.threshold, "bn_folding_max_abs_dp": folded_error,
            "rows": rows, "seconds": time.perf_counter() - t0}


def markdown(report: dict) -> str:
    lines = [f"int8 fake-quantized alone, {report['rows'][0]['n']} val images, threshold {report['threshold']:.4f}",
             "", "| part | val p99 \\|Δp\\| | max \\|Δp\\| | flips |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['p99_abs_dp']:.4f} | {r['max_abs_dp']:.4f} | {r['flips']} |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    from moleport.argtypes import add_dataclass_arguments, dataclass_from_args
    from moleport.data.manifest import ManifestError
    from moleport.models.checkpoint import CheckpointError

    ap = argparse.ArgumentParser(prog="python -m moleport.train.sensitivity", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, help="write the rows as JSON here (the Markdown table goes to stdout)")
    add_dataclass_arguments(ap, SensitivityConfig)
    a = ap.parse_args(argv)
    try:
        report = decompose(a.checkpoint, a.manifest, dataclass_from_args(SensitivityConfig, a))
    except (QatError, CheckpointError, ManifestError) as exc:
        print(f"python -m moleport.train.sensitivity: error: {exc}", file=sys.stderr)
        return 2
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
