"""Empirical bias correction: the int8 simulation's per-channel output means are moved onto the fp32 model's."""
from __future__ import annotations

import numpy as np
import torch

from moleport.models import bias_correction as bc
from moleport.models import int8_sim as sim
from moleport.models.mobilenet_v1 import MobileNetV1
from moleport.models.quant import Scope, within


def _model() -> MobileNetV1:
    torch.manual_seed(0)
    model = MobileNetV1(num_classes=1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def _batches() -> list[torch.Tensor]:
    return [torch.randn(12, 3, 48, 48, generator=torch.Generator().manual_seed(0))]


def _outside(scope: Scope):
    keep = scope.float_modules()
    return lambda name, _layer: not within(name, keep)


def _mean_gap(model, quantized, batches, sites=sim.SITES, reference=None) -> float:
    """Mean over layers of the mean per-channel |E_fp32 - E_int8| of the simulated ``model``, against the fp32
    means of ``reference`` (default: ``model`` itself)."""
    folded, ref_folded = sim.fold_batch_norm(model), sim.fold_batch_norm(reference or model)
    layers = sim.quantized_layers(folded)
    obs = sim.calibrate(folded, layers, batches)
    ref = bc.channel_moments(ref_folded, sim.quantized_layers(ref_folded), batches)
    parts = {(n, s) for n, m in layers.items() if quantized(n, m) for s in sites}
    with sim.fake_quantized(folded, layers, parts, obs):
        got = bc.channel_moments(folded, layers, batches)
    return float(np.mean([(ref[n][0] - got[n][0]).abs().mean() for n in layers]))


def test_the_corrected_copy_matches_the_fp32_means_and_leaves_the_model_alone():
    model, batches = _model(), _batches()
    quantized = _outside(Scope(float_blocks=0, float_classifier=False))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    corrected, summary = bc.bias_corrected(model, batches, quantized)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert summary["layers_corrected"] == summary["int8_layers"] == 28 and summary["max_shift_in_std"] > 0
    assert _mean_gap(corrected, quantized, batches, reference=model) < 0.5 * _mean_gap(model, quantized, batches)
    changed = [k for k in before if not torch.equal(before[k], corrected.state_dict()[k])]
    assert changed and all(k.endswith("bn.bias") or k == "classifier.bias" for k in changed)


def test_fp32_leading_blocks_are_not_touched_and_the_fp32_classifier_is():
    model, batches = _model(), _batches()
    corrected, summary = bc.bias_corrected(model, batches, _outside(Scope(float_blocks=2, float_classifier=True)))
    state, orig = corrected.state_dict(), model.state_dict()
    assert all(torch.equal(state[k], orig[k]) for k in orig if k.startswith(("features.0.", "features.1.")))
    assert not torch.equal(state["classifier.bias"], orig["classifier.bias"])  # its int8 input's mean moved
    assert summary["layers_corrected"] == 28 - 3  # the stem and block 1 (dw + pw) stay as they are


def test_weight_only_correction_for_the_large_layers():
    model, batches = _model(), _batches()
    large = lambda _name, layer: layer.weight.numel() > 8192  # noqa: E731 (Core ML W8's rule)
    corrected, summary = bc.bias_corrected(model, batches, large, sites=("weight",))
    assert summary["sites"] == ["weight"] and 0 < summary["int8_layers"] < 28
    gap = _mean_gap(corrected, large, batches, ("weight",), reference=model)
    assert gap < 0.01 * _mean_gap(model, large, batches, ("weight",))  # exact: no activation ranges to re-fit


def test_bad_arguments_are_errors():
    import pytest

    with pytest.raises(ValueError, match="sites"):
        bc.bias_corrected(_model(), _batches(), lambda *_: True, sites=("bias",))
