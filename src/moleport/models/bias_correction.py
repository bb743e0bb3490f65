"""Empirical bias correction of int8 layers (Nagel et al. 2019, "Data-free quantization through weight equalization
and bias correction", section 4.2, with the expectations measured on calibration images instead of derived from
batch-norm statistics).

Quantizing a layer's weights (and its input) shifts the *mean* of its output per channel: ``E[(W_q - W) x]`` is
not zero, and the shifts compound through MobileNetV1's 27 convs. Post-training quantization leaves them in; this
step measures them and removes them by moving each layer's bias, in forward order, so that every layer's mean
pre-activation output on the calibration images equals the fp32 model's:

    for each conv / linear L (forward order):  b_L += E_fp32[y_L] - E_int8[y_L]   (per output channel)

where ``E_int8`` is measured on the model simulated in the export's int8 scheme (:mod:`moleport.models.int8_sim`,
batch-norm folded) with the corrections of the earlier layers already in (all in one forward pass: see
:func:`bias_corrected`). The shift goes into the fp32 model's
batch-norm shift (``bn.bias``; or the layer's own bias), which folds into the conv bias the int8 program carries:
the quantized artifact is converted from the corrected model as before, with no new op in its graph. Layers that
stay fp32 are simulated in fp32; a fp32 layer downstream of int8 ones (the classifier) is corrected too, since its
input's mean moved. ``sites`` picks what is int8: everything (the int8 TFLite/ExecuTorch backbone) or the weights
alone (Core ML W8, whose activations stay float).

Use calibration (training) images only: the correction is fitted on them.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from moleport.models import int8_sim as sim


@torch.no_grad()
def channel_moments(model: nn.Module, layers: dict[str, nn.Module], batches: list[torch.Tensor]
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every layer's output mean and standard deviation per channel (over images and positions) on ``batches``;
    pre-activation for the convs (their ReLU6 comes after, in the parent ConvBN)."""
    sums: dict[str, list] = {}

    def hook(name):
        def record(_module, _args, out):
            y = out.double().transpose(0, 1).reshape(out.shape[1], -1)
            acc = sums.setdefault(name, [0, 0.0, 0.0])
            acc[0] += y.shape[1]
            acc[1] = acc[1] + y.sum(1)
            acc[2] = acc[2] + (y * y).sum(1)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name, (n, s1, s2) in sums.items():
        mean = s1 / n
        out[name] = (mean, (s2 / n - mean * mean).clamp_min(0).sqrt())
    return out


def _shift_bias(model: nn.Module, layer_name: str, delta: torch.Tensor) -> None:
    """Add ``delta`` to the output of ``layer_name`` in ``model``: its ConvBN's batch-norm shift, else its bias."""
    layer = model.get_submodule(layer_name)
    parent_name = layer_name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    bn = getattr(parent, "bn", None)
    target = bn if isinstance(bn, nn.BatchNorm2d) and getattr(parent, "conv", None) is layer else layer
    if target.bias is None:
        target.bias = nn.Parameter(torch.zeros(delta.numel(), dtype=layer.weight.dtype))
    target.bias.data += delta.to(target.bias.dtype)


@torch.no_grad()
def bias_corrected(model: nn.Module, batches: list[torch.Tensor], quantized: Callable[[str, nn.Module], bool],
                   sites: tuple[str, ...] = sim.SITES) -> tuple[nn.Module, dict]:
    """A copy of ``model`` (fp32, batch-norm unfolded) whose biases cancel the mean output shift that int8
    ``sites`` of the layers ``quantized(name, layer)`` selects bring (see the module docstring). ``batches``:
    normalised NCHW calibration tensors. ``model`` is left untouched.

    One simulated forward pass over all calibration images as one batch does the layer-by-layer sequence: each
    layer's hook measures its mean output shift over the whole set, adds the correction to its output (so every
    later layer sees the corrected input) and records it in the copy's bias. Returns the copy and a summary for
    the reports: layers corrected, largest and mean |shift| per layer in units of its mean per-channel output
    standard deviation."""
    if not batches or not set(sites) <= set(sim.SITES):
        raise ValueError(f"bias correction needs calibration batches and sites within {sim.SITES}, got {sites}")
    corrected = copy.deepcopy(model).eval()
    folded = sim.fold_batch_norm(corrected)
    layers = sim.quantized_layers(folded)
    int8_layers = [n for n, m in layers.items() if quantized(n, m)]
    if not int8_layers:
        raise ValueError("bias correction: no layer is int8")
    order = list(layers)
    downstream = {n: layers[n] for n in order[order.index(int8_layers[0]):]}  # upstream nothing moves
    observers = sim.calibrate(folded, layers, batches) if set(sites) - {"weight"} else {}
    reference = channel_moments(folded, downstream, batches)
    shifts: dict[str, float] = {}

    def correct(name):
        def hook(_module, _args, out):
            mean, std = reference[name]
            dims = [0] + list(range(2, out.dim()))
            delta = (mean - out.double().mean(dims)).to(out.dtype)
            _shift_bias(corrected, name, delta)
            shifts[name] = float(delta.double().abs().max() / std.mean().clamp_min(1e-12))
            return out + delta.view(1, -1, *([1] * (out.dim() - 2)))
        return hook

    with sim.fake_quantized(folded, layers, {(n, s) for n in int8_layers for s in sites}, observers):
        handles = [m.register_forward_hook(correct(n)) for n, m in downstream.items()]
        try:
            folded(torch.cat(batches))
        finally:
            for h in handles:
                h.remove()
    values = list(shifts.values())
    return corrected, {"layers_corrected": len(values), "int8_layers": len(int8_layers), "sites": list(sites),
                       "calib_n": int(sum(len(x) for x in batches)), "max_shift_in_std": max(values),
                       "mean_shift_in_std": sum(values) / len(values)}
