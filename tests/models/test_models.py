"""Architectures: one-logit head, trainability, weight sources, shared ImageNet weights."""
import importlib.util

import pytest
import torch

from moleport.models import ARCHITECTURES, ModelError, build_backbone, build_model
from moleport.models.mobilenet_v1 import keras_state_dict_to_moleport

LIGHT = ["alexnet", "mobilenet", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_lite0"]
HEAVY = ["resnet50", "vgg16", "vgg19"]
ALL = LIGHT + HEAVY  # all build and step at 64x64 in a few seconds each on CPU


def test_registry_lists_the_eight_architectures():
    assert set(ARCHITECTURES) == set(LIGHT + HEAVY)


def _one_step_decreases_loss(arch: str) -> tuple[torch.Tensor, float, float]:
    torch.manual_seed(0)
    model = build_model(arch)
    x = torch.randn(4, 3, 64, 64)
    y = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    torch.manual_seed(1)  # same dropout masks in both forward passes
    out = model(x)
    before = loss_fn(out, y)
    before.backward()
    opt.step()
    torch.manual_seed(1)
    with torch.no_grad():
        after = loss_fn(model(x), y)
    return out, before.item(), after.item()


@pytest.mark.parametrize("arch", ALL)
def test_builds_one_logit_and_trains(arch):
    out, before, after = _one_step_decreases_loss(arch)
    assert out.shape == (4, 1)
    assert after < before


def test_unknown_architecture_lists_choices():
    with pytest.raises(ModelError, match="mobilenet_v2"):
        build_model("inception")


def test_imagenet_for_torchvision_arch_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelError, match="torch hub cache"):
        build_model("alexnet", "imagenet")


def test_local_state_dict_paths(tmp_path):
    torch.manual_seed(1)
    one = build_model("mobilenet")
    torch.save(one.state_dict(), tmp_path / "one.pth")
    back = build_model("mobilenet", tmp_path / "one.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(one.eval()(x), back(x))
    full = build_backbone("mobilenet")  # a 1000-class file gets its head replaced
    torch.save(full.state_dict(), tmp_path / "full.pth")
    m = build_model("mobilenet", tmp_path / "full.pth")
    assert torch.equal(m.features[0].conv.weight, full.features[0].conv.weight)
    assert m.classifier.out_features == 1
    with pytest.raises(ModelError, match="cannot load"):
        build_model("mobilenet_v2", tmp_path / "full.pth")
    with pytest.raises(ModelError, match="not found"):
        build_model("mobilenet", tmp_path / "missing.pth")


def test_mobilenet_v1_keras_names_map_and_graph_is_exportable():
    m = build_backbone("mobilenet")
    keras = {"conv1.weight": torch.zeros(32, 3, 3, 3), "conv_dw_13_bn.running_var": torch.ones(1024),
             "conv_pw_2.weight": torch.zeros(128, 64, 1, 1), "conv_preds.weight": torch.zeros(1000, 1024, 1, 1)}
    mapped = keras_state_dict_to_moleport(keras)
    own = m.state_dict()
    for k, v in mapped.items():
        assert own[k].shape == v.shape, k
    ep = torch.export.export(build_model("mobilenet").eval(), (torch.randn(1, 3, 224, 224),))
    assert ep.module()(torch.randn(1, 3, 224, 224)).shape == (1, 1)


def test_efficientnet_lite_names_map_and_stride2_padding_is_tf_same():
    from torch.nn import functional as F

    from moleport.models.efficientnet_lite import lite_state_dict_to_moleport
    from moleport.models.mobilenet_v1 import ConvBN

    m = build_backbone("efficientnet_lite0")
    lite = {"_conv_stem.weight": torch.zeros(32, 3, 3, 3), "_bn0.running_var": torch.ones(32),
            "_blocks.0._depthwise_conv.weight": torch.zeros(32, 1, 3, 3), "_blocks.15._bn2.bias": torch.zeros(320),
            "_blocks.1._expand_conv.weight": torch.zeros(96, 16, 1, 1), "_conv_head.weight": torch.zeros(1280, 320, 1, 1),
            "_bn1.weight": torch.ones(1280), "_fc.weight": torch.zeros(1000, 1280)}
    own = m.state_dict()
    for k, v in lite_state_dict_to_moleport(lite).items():
        assert own[k].shape == v.shape, k
    with pytest.raises(KeyError, match="_se_reduce"):
        lite_state_dict_to_moleport({"_blocks.1._se_reduce.weight": torch.zeros(1)})
    for kernel, size in [(3, 224), (5, 56), (3, 14), (5, 28)]:  # TF 'SAME': pad total max(k - s, 0) on even inputs
        block = ConvBN(4, 4, kernel, 2).eval()
        x = torch.randn(1, 4, size, size)
        total = kernel - 2
        same = F.conv2d(F.pad(x, (total // 2, total - total // 2) * 2), block.conv.weight, stride=2)
        torch.testing.assert_close(block.conv(block.pad(x)), same)
    assert ARCHITECTURES["efficientnet_lite0"].mean == (127 / 255,) * 3


def _imagenet_labels(weights_dir):
    return (weights_dir / "testdata" / "imagenet_labels.txt").read_text().splitlines()[1:]  # drop background


@pytest.mark.shared
@pytest.mark.parametrize("arch", ["mobilenet", "mobilenet_v2", "efficientnet_lite0"])
def test_shared_imagenet_weights_classify_testdata(arch, weights_dir):
    from moleport.preprocess import load_image, normalize_batch
    from moleport.spec import ModelSpec

    labels = _imagenet_labels(weights_dir)
    files = {"parrot.jpg": "macaw", "hot_dog.jpg": "hotdog", "cat.bmp": "Egyptian cat"}
    x = normalize_batch(torch.from_numpy(
        __import__("numpy").stack([load_image(weights_dir / "testdata" / f) for f in files])),
        ModelSpec(arch, mean=ARCHITECTURES[arch].mean, std=ARCHITECTURES[arch].std))
    model = build_backbone(arch, "imagenet").eval()
    with torch.no_grad():
        top = model(x).argmax(1).tolist()
    assert [labels[i].split(",")[0] for i in top] == list(files.values())
    assert build_model(arch, "imagenet")(x[:1]).shape == (1, 1)


@pytest.mark.shared
def test_mobilenet_v1_matches_the_shared_reference_module(weights_dir):
    ref_file = weights_dir / "mobilenet_v1_keras.py"
    spec = importlib.util.spec_from_file_location("_shared_mnv1_ref", ref_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sd = torch.load(weights_dir / "mobilenet_v1_keras_tflite_qat_imagenet.pth", weights_only=True)
    ref = mod.MobileNetV1Keras()
    ref.load_state_dict(sd)
    ours = build_backbone("mobilenet", "imagenet")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-4)


@pytest.mark.shared
def test_efficientnet_lite0_matches_the_shared_reference_module(weights_dir):
    spec = importlib.util.spec_from_file_location("_shared_lite0_ref", weights_dir / "efficientnet_lite0.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref = mod.EfficientNetLite0()
    ref.load_state_dict(torch.load(weights_dir / "efficientnet_lite0_imagenet.pth", weights_only=True))
    ours = build_backbone("efficientnet_lite0", "imagenet")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-4)
