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

import contextlib
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from moleport.argtypes import cli
from moleport.train.qat import QatError, agreement, calibration_images, inputs, logits

SITES = ("input", "weight", "output")


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


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``conv`` -> ``bn`` pair (:class:`ConvBN`) folded into one biased conv."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv, module.bn = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return folded


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def output_modules(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Where each layer's int8 output is taken: after its ConvBN's ReLU6 (the export fuses conv + ReLU6 and
    quantizes the activation), else the layer's own output (the classifier: the logit)."""
    modules = dict(model.named_modules())
    out = {}
    for name, layer in layers.items():
        parent = modules.get(name.rpartition(".")[0])
        out[name] = parent if parent is not None and getattr(parent, "conv", None) is layer else layer
    return out


def _fq_activation(x: torch.Tensor, observer) -> torch.Tensor:
    scale, zero = observer.calculate_qparams()
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero), -128, 127)


def _fq_weight(w: torch.Tensor) -> torch.Tensor:
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
    return torch.fake_quantize_per_channel_affine(w, amax / 127.0, torch.zeros_like(amax, dtype=torch.int32), 0,
                                                  -127, 127)


def calibrate(model: nn.Module, layers: dict[str, nn.Module], batches) -> dict[tuple[str, str], object]:
    """Histogram observers of every layer's input and output over ``batches`` (normalised NCHW tensors)."""
    from torch.ao.quantization.observer import HistogramObserver

    observers = {(n, s): HistogramObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=-128,
                                           quant_max=127) for n in layers for s in ("input", "output")}

    def hook(name, site):
        def record(_module, args, output):
            observers[(name, site)]((args[0] if site == "input" else output).detach())
        return record

    outs = output_modules(model, layers)
    handles = [m.register_forward_hook(hook(n, "input")) for n, m in layers.items()]
    handles += [outs[n].register_forward_hook(hook(n, "output")) for n in layers]
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
    return observers


@contextlib.contextmanager
def fake_quantized(model: nn.Module, layers: dict[str, nn.Module], parts: set[tuple[str, str]], observers
                   ) -> Iterator[None]:
    """Within the block, the (layer, site) ``parts`` run int8-fake-quantized; everything is restored on exit."""
    handles, saved, outs = [], {}, output_modules(model, layers)
    try:
        for name, module in layers.items():
            if (name, "weight") in parts:
                saved[name] = module.weight.data
                module.weight.data = _fq_weight(module.weight.data)
            if (name, "input") in parts:
                handles.append(module.register_forward_pre_hook(
                    lambda _m, args, o=observers[(name, "input")]: (_fq_activation(args[0], o), *args[1:])))
            if (name, "output") in parts:
                handles.append(outs[name].register_forward_hook(
                    lambda _m, _a, out, o=observers[(name, "output")]: _fq_activation(out, o)))
        yield
    finally:
        for h in handles:
            h.remove()
        for name, data in saved.items():
            layers[name].weight.data = data


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
