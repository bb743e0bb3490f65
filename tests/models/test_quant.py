"""The int8 backbone helpers: batch-norm eps re-parametrisation for torchao's QAT, quantized-layer counting."""
import copy

import torch
from torch import nn

from moleport.models import quant
from moleport.models.mobilenet_v1 import MobileNetV1


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = MobileNetV1(num_classes=1)
    for mod in m.modules():  # non-trivial statistics, as a trained model has
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(2e-3, 5e-2)  # small variances: where eps 1e-3 vs 1e-5 matters
            with torch.no_grad():  # unit gain per layer, so 27 random layers do not amplify float rounding
                mod.weight.copy_(torch.sqrt(mod.running_var + mod.eps))
    return m.eval()


def test_eps_reparametrisation_keeps_the_eval_function():
    m = _model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = m(x)
        after = quant.with_torchao_bn_eps(copy.deepcopy(m))(x)
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)


def test_qat_graph_in_eval_form_is_the_model_before_any_quantization():
    """torchao's train/eval switch assumes eps 1e-5; without the re-parametrisation this graph was 0.74 logits off."""
    from torchao.quantization.pt2e import move_exported_model_to_eval

    m = _model()
    g = quant.export_backbone(m, 64, qat=True)
    move_exported_model_to_eval(g)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(g(x), m(x), atol=1e-3, rtol=1e-3)


def test_post_training_quantization_quantizes_every_conv_and_the_head():
    m = _model()
    converted = quant.post_training_quantize(m, 64, [torch.randn(4, 3, 64, 64)])
    counts = quant.count_quantized(converted)
    assert counts == {"conv": 27, "linear": 1, "float_conv": 0, "float_linear": 0}


def test_without_the_reparametrisation_torchaos_eval_switch_changes_the_model():
    """The failure the re-parametrisation exists for (so the test above can fail)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval

    m = _model()
    batch = torch.export.Dim("batch", min=1, max=8)
    g = torch.export.export(copy.deepcopy(m).train(), (torch.zeros(2, 3, 64, 64),), dynamic_shapes=({0: batch},)).module()
    move_exported_model_to_eval(g)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(g(x), m(x), atol=1e-3, rtol=1e-3)
