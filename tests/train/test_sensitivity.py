"""``python -m moleport.train.sensitivity``: int8 fake quantization one part at a time, restored afterwards."""
from __future__ import annotations

import torch

from moleport.models.mobilenet_v1 import MobileNetV1
from moleport.train import sensitivity as sens


def _model() -> MobileNetV1:
    torch.manual_seed(0)
    model = MobileNetV1(num_classes=1)
    for m in model.modules():  # batch-norm statistics that are not the identity, so folding has work to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def test_folding_batch_norm_keeps_the_outputs_and_leaves_the_model_alone():
    model, x = _model(), torch.rand(2, 3, 64, 64)
    folded = sens.fold_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_fake_quantization_applies_inside_the_block_only():
    model = sens.fold_batch_norm(_model())
    layers = sens.quantized_layers(model)
    assert len(layers) == 28  # 27 convs + the classifier
    x = torch.rand(4, 3, 64, 64)
    observers = sens.calibrate(model, layers, [x])
    with torch.no_grad():
        before = model(x)
        weight = layers["features.0.conv"].weight.clone()
        with sens.fake_quantized(model, layers, {(n, s) for n in layers for s in sens.SITES}, observers):
            inside = model(x)
            assert not torch.equal(layers["features.0.conv"].weight, weight)
        after = model(x)
    assert torch.equal(after, before) and torch.equal(layers["features.0.conv"].weight, weight)
    assert not torch.allclose(inside, before)


def test_the_parts_are_everything_each_block_and_optionally_each_layer_site():
    layers = sens.quantized_layers(sens.fold_batch_norm(_model()))
    parts = sens.parts_to_measure(layers, per_layer=False)
    assert [p[0] for p in parts][:2] == ["everything", "features.0 (whole)"] and parts[-1][0] == "classifier (whole)"
    assert len(parts) == 1 + 14 + 1 and len(parts[0][1]) == 28 * 3
    assert len(sens.parts_to_measure(layers, per_layer=True)) == 16 + 28 * 3


def test_a_missing_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    assert sens.main([str(tmp_path / "c.pt"), "--manifest", str(tmp_path / "m.json")]) == 2
    assert "c.pt" in capsys.readouterr().err
