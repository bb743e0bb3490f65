"""Training-time augmentation: acquisition shift."""
import pytest
import torch

from moleport.train.config import ConfigError, RunConfig
from moleport.train.data import acquisition_shift


def _batch(n=6, s=64):
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    base = torch.stack([200 * xx, 150 * yy, 100 + 50 * xx * yy], -1)  # a smooth, non-symmetric image
    return base.expand(n, s, s, 3).clone()


def test_strength_zero_is_the_identity():
    x = _batch()
    assert acquisition_shift(x, 0.0) is x


def test_shift_keeps_shape_range_and_changes_every_image():
    x = _batch()
    torch.manual_seed(1)
    y = acquisition_shift(x, 1.0)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 255.0
    assert torch.all((y - x).abs().flatten(1).mean(1) > 1.0)  # no image left as it was
    torch.manual_seed(1)
    assert torch.equal(acquisition_shift(x, 1.0), y)  # reproducible from the global seed (resume)


def test_shift_grows_with_strength():
    x = _batch(n=64)
    diffs = []
    for strength in (0.2, 1.0):
        torch.manual_seed(2)
        diffs.append(float((acquisition_shift(x, strength) - x).abs().mean()))
    assert diffs[0] < diffs[1]


def test_vignette_blackens_the_corners_of_some_images():
    x = _batch(n=200)
    torch.manual_seed(3)
    y = acquisition_shift(x, 1.0)
    corner = y[:, :3, :3].amax(dim=(1, 2, 3))
    assert 10 <= int((corner < 5).sum()) <= 100  # p 0.25 of 200 images, a disc that leaves the corners black


def test_strength_is_validated():
    with pytest.raises(ConfigError, match="acquisition"):
        RunConfig(name="t", arch="mobilenet", epochs=1, batch_size=2, lr=1e-3, acquisition=1.5)


def test_predict_logits_averages_the_spec_views():
    """With spec.tta the final val/test pass is the mean logit over preprocess.tta_views, as the reference computes."""
    import numpy as np
    import torch
    from torch import nn

    from moleport.preprocess import normalize_batch, tta_views
    from moleport.spec import ModelSpec
    from moleport.train.data import SplitTensors, predict_logits

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1))
    net(torch.zeros(1, 3, 32, 32))
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8))
    data = SplitTensors(x=x, y=torch.zeros(5), files=tuple(f"{i}.png" for i in range(5)))
    spec = ModelSpec("tiny", input_size=32, tta="dihedral8")
    got = predict_logits(net, data, spec, torch.device("cpu"), batch_size=2)
    with torch.no_grad():
        views = [net(normalize_batch(v, spec)).reshape(-1) for v in tta_views(x.numpy(), "dihedral8")]
    torch.testing.assert_close(got, torch.stack(views).mean(0), atol=1e-5, rtol=0)
    single = predict_logits(net, data, spec.replace(tta=None), torch.device("cpu"))
    assert (got - single).abs().max() > 1e-3
