"""The int8 backbone helpers: batch-norm eps re-parametrisation for torchao's QAT, quantized-layer counting."""
import copy

import pytest
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


def test_post_training_quantization_quantizes_every_conv_and_the_head_on_request():
    m = _model()
    converted = quant.post_training_quantize(m, 64, [torch.randn(4, 3, 64, 64)], scope=quant.Scope(0, False))
    counts = quant.count_quantized(converted)
    assert counts == {"conv": 27, "linear": 1, "float_conv": 0, "float_linear": 0}


def _first_conv_input(graph_module: torch.fx.GraphModule) -> str:
    conv = next(n for n in graph_module.graph.nodes if n.op == "call_function" and "conv" in str(n.target))
    src = conv.args[0]
    while str(getattr(src, "target", "")).startswith("aten.pad") or "pad" in str(getattr(src, "target", "")):
        src = src.args[0]
    return str(src.op if src.op == "placeholder" else src.target)


def test_the_scope_keeps_the_classifier_and_the_leading_blocks_fp32():
    """Default: every conv int8, the classifier Linear (whose output is the logit) fp32. Scope(3): the stem and
    the first two depthwise-separable blocks (5 convs) fp32 too, their input not quantized at all."""
    m = _model()
    calib = [torch.randn(4, 3, 64, 64)]
    default = quant.post_training_quantize(m, 64, calib)
    assert quant.count_quantized(default) == {"conv": 27, "linear": 0, "float_conv": 0, "float_linear": 1}
    assert "dequantize" in _first_conv_input(default)
    prefix = quant.post_training_quantize(m, 64, calib, scope=quant.Scope(float_blocks=3))
    assert quant.count_quantized(prefix) == {"conv": 22, "linear": 0, "float_conv": 5, "float_linear": 1}
    assert _first_conv_input(prefix) == "placeholder"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # still the model, up to int8 rounding of the rest
        assert torch.allclose(prefix(x), m(x), atol=0.5)


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


def _relu6_quantization(converted: torch.fx.GraphModule) -> list[tuple[str, float | None]]:
    """(producer of each ReLU6's input, scale of the quantize op on its output) for every ReLU6 of a converted graph."""
    rows = []
    for node in converted.graph.nodes:
        if node.op == "call_function" and "hardtanh" in str(node.target):
            quantize = [u for u in node.users if "quantize_per_tensor" in str(u.target) and "dequantize" not in str(u.target)]
            scale = quantize[0].args[1] if quantize else None
            rows.append((str(node.args[0].target), float(scale) if isinstance(scale, (int, float)) else scale))
    return rows


def _assert_relu6_fused(converted: torch.fx.GraphModule) -> None:
    rows = _relu6_quantization(converted)
    assert len(rows) == 27
    for producer, scale in rows:
        # The int8 tensor is the ReLU6 output (range within [0, 6]), not the conv's pre-activation: no
        # quantize/dequantize between the conv and its ReLU6 (XNNPACK and TFLite fuse the clamp into the conv).
        assert "conv" in producer, producer
        assert scale is not None and scale <= 6.0 / 255 * 1.001, scale


def test_relu6_is_fused_into_its_conv_in_post_training_quantization():
    m = _model()
    _assert_relu6_fused(quant.post_training_quantize(m, 64, [torch.randn(4, 3, 64, 64) * 3]))


def test_relu6_is_fused_into_its_conv_in_the_qat_graph():
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    m = _model()
    prepared = prepare_qat_pt2e(quant.export_backbone(m, 64, qat=True), quant.quantizer(qat=True))
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        prepared(torch.randn(4, 3, 64, 64) * 3)
    converted = quant.convert(prepared)
    assert quant.count_quantized(converted) == {"conv": 27, "linear": 0, "float_conv": 0, "float_linear": 1}
    _assert_relu6_fused(converted)


def test_the_qat_graph_keeps_the_scopes_fp32_blocks():
    """torchao's QAT conv-bn rewrite must see the fp32 blocks' convs unannotated (an empty annotation crashed it)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    m = _model()
    scope = quant.Scope(float_blocks=2)
    prepared = prepare_qat_pt2e(quant.export_backbone(m, 64, qat=True), quant.quantizer(qat=True, scope=scope))
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        prepared(torch.randn(4, 3, 64, 64) * 3)
    assert quant.count_quantized(quant.convert(prepared)) == {"conv": 24, "linear": 0, "float_conv": 3,
                                                              "float_linear": 1}


def test_float_share_counts_the_fp32_layers_weights_and_multiply_adds():
    share = quant.float_share(MobileNetV1(num_classes=1), quant.Scope(float_blocks=4), 224)
    assert share["macs"] == pytest.approx(568e6, rel=0.01)  # MobileNetV1 at 224: ~569 M multiply-adds
    assert share["fp32_weight_fraction"] == pytest.approx(0.0096, abs=5e-4)
    assert share["fp32_mac_fraction"] == pytest.approx(0.216, abs=5e-3)
    assert quant.float_share(MobileNetV1(num_classes=1), quant.Scope(0, float_classifier=False), 224)["fp32_mac_fraction"] == 0
