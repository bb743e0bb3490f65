"""The int8 export's numerics simulated eagerly on an fp32 backbone: batch-norm folded, then int8 fake quantization
of chosen (layer, site) parts — weights symmetric int8 per output channel, activations int8 per tensor with ranges
from a histogram observer (the scheme of :mod:`moleport.models.quant`).

Shared by the sensitivity decomposition (:mod:`moleport.train.sensitivity`) and bias correction
(:mod:`moleport.models.bias_correction`, which int8 training and the Core ML W8 export both use).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
from torch import nn

#: Where a layer can be int8: its input activation, its weights, its (post-ReLU6) output activation.
SITES = ("input", "weight", "output")


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
