"""The raw-pixel wrapper reproduces normalize_batch + sigmoid, in both layouts."""
import numpy as np
import torch
from torch import nn

from moleport.export.wrapper import export_contract, wrap
from moleport.preprocess import melanoma_probability, normalize_batch, shades_of_gray
from moleport.spec import ModelSpec


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)).eval()


def test_matches_reference_preprocessing_both_layouts():
    spec = ModelSpec("tiny", input_size=32)
    model = _tiny()
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    with torch.no_grad():
        p = torch.sigmoid(model(normalize_batch(x, spec)))
        nhwc = wrap(model, spec, "NHWC")(torch.as_tensor(x, dtype=torch.float32))
        nchw = wrap(model, spec, "NCHW")(torch.as_tensor(x, dtype=torch.float32).permute(0, 3, 1, 2))
    assert torch.allclose(nhwc[:, 1:], p, atol=1e-6) and torch.allclose(nhwc.sum(1), torch.ones(3))
    assert torch.allclose(nhwc, nchw, atol=1e-6)
    assert p.std() > 0  # the inputs really differ


def test_bgr_spec_flips_channels_inside_graph():
    spec = ModelSpec("tiny", input_size=32, color_order="BGR")
    model = _tiny()
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    with torch.no_grad():
        want = torch.sigmoid(model(normalize_batch(x, spec)))
        got = wrap(model, spec)(torch.as_tensor(x, dtype=torch.float32))[:, 1:]
    assert torch.allclose(got, want, atol=1e-6)


def test_contract_names_layout_range_and_labels():
    c = export_contract(ModelSpec("mobilenet"))
    assert c["range"] == [0.0, 255.0] and c["color_order"] == "RGB" and c["dtype"] == "float32"
    assert c["shape"]["NHWC"] == [1, 224, 224, 3] and c["layout"]["tflite"] == "NHWC"
    assert c["output"]["labels"] == ["nevus", "melanoma"]


def _tinted(n: int, seed: int) -> np.ndarray:
    """Images under different coloured illuminants (what colour constancy must undo)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (n, 32, 32, 3)).astype(np.float64)
    tint = rng.uniform(0.5, 1.3, (n, 1, 1, 3))
    return np.clip(base * tint, 0, 255).astype(np.uint8)


def test_colour_constancy_and_temperature_in_graph_match_the_reference():
    spec = ModelSpec("tiny", input_size=32, color_constancy="shades-of-gray-p6", temperature=1.7)
    model = _tiny()
    x = _tinted(4, 2)
    with torch.no_grad():
        want = melanoma_probability(model(normalize_batch(x, spec)), spec)
        got = wrap(model, spec)(torch.as_tensor(x, dtype=torch.float32))[:, 1:]
        plain = wrap(model, ModelSpec("tiny", input_size=32))(torch.as_tensor(x, dtype=torch.float32))[:, 1:]
    assert torch.allclose(got, want, atol=1e-6)
    assert (got - plain).abs().max() > 1e-3  # the options change the output


def test_shades_of_gray_removes_a_global_colour_cast():
    rng = np.random.default_rng(3)
    scene = rng.uniform(0.1, 0.7, (1, 3, 16, 16))
    cast = np.array([1.3, 1.0, 0.7]).reshape(1, 3, 1, 1)
    a = shades_of_gray(torch.as_tensor(scene))
    b = shades_of_gray(torch.as_tensor(scene * cast))
    ratio = b / a  # a per-channel gain changes only the overall brightness, not the colour balance
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-9)
    grey = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64)
    assert torch.allclose(shades_of_gray(grey), grey)  # a grey illuminant leaves pixels unchanged
    assert export_contract(ModelSpec("m", color_constancy="shades-of-gray-p6"))["color_constancy"].startswith("inside")


def _views_reference(model, spec, x):
    """P(melanoma) through preprocess.view_logits (the PyTorch reference's test-time augmentation)."""
    from moleport.preprocess import view_logits

    with torch.no_grad():
        return melanoma_probability(view_logits(lambda b: model(normalize_batch(b, spec)).reshape(-1), x, spec), spec)


def test_in_graph_tta_matches_the_reference_views_in_both_layouts():
    from moleport.spec import TTA_RULES

    model = _tiny()
    x = _tinted(3, 4)
    single = wrap(model, ModelSpec("tiny", input_size=32))(torch.as_tensor(x, dtype=torch.float32))[:, 1]
    for rule in TTA_RULES:
        spec = ModelSpec("tiny", input_size=32, tta=rule, color_constancy="shades-of-gray-p6", temperature=1.3)
        want = _views_reference(model, spec, x)
        with torch.no_grad():
            nhwc = wrap(model, spec, "NHWC")(torch.as_tensor(x, dtype=torch.float32))
            nchw = wrap(model, spec, "NCHW")(torch.as_tensor(x, dtype=torch.float32).permute(0, 3, 1, 2))
        assert nhwc.shape == (3, 2)
        torch.testing.assert_close(nhwc[:, 1], want.float(), atol=1e-6, rtol=0)
        torch.testing.assert_close(nchw, nhwc, atol=1e-6, rtol=0)
        assert (nhwc[:, 1] - single).abs().max() > 1e-4, rule  # the views change the answer


def test_dihedral8_in_graph_is_invariant_to_every_flip_and_quarter_turn():
    """Averaged over the whole dihedral group, an image and any of its 8 symmetric versions get one answer."""
    from moleport.preprocess import tta_views

    model = _tiny()
    spec = ModelSpec("tiny", input_size=32, tta="dihedral8")
    x = _tinted(2, 5)
    net = wrap(model, spec)
    with torch.no_grad():
        base = net(torch.as_tensor(x, dtype=torch.float32))
        for view in tta_views(x, "dihedral8"):
            torch.testing.assert_close(net(torch.as_tensor(view, dtype=torch.float32)), base, atol=2e-6, rtol=0)
        flips2 = wrap(model, spec.replace(tta="flips2"))
        turned = flips2(torch.as_tensor(np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2))), dtype=torch.float32))
        assert (turned - flips2(torch.as_tensor(x, dtype=torch.float32))).abs().max() > 1e-4  # not a quarter-turn group


def test_contract_names_the_in_graph_tta():
    assert export_contract(ModelSpec("m"))["tta"] is None
    assert "8 dihedral8 views" in export_contract(ModelSpec("m", tta="dihedral8"))["tta"]
