"""Checkpoint round trip and the errors of bad checkpoints."""
import pytest
import torch

from moleport.models import build_model
from moleport.jsonio import sha256_file
from moleport.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from moleport.spec import ModelSpec


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("mobilenet")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    spec = ModelSpec("mobilenet", threshold=0.37)
    path = save_checkpoint(tmp_path / "ck" / "c.pt", model, spec, manifest_sha256="abc", metrics={"val": {"auc": 0.9}},
                           history=[{"epoch": 1, "loss": 0.5}], epoch=1, run={"name": "t"}, optimizer=opt)
    return model.eval(), path


def test_round_trip_identical_outputs(saved):
    model, path = saved
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.spec == ModelSpec("mobilenet", threshold=0.37)
    assert loaded.meta["manifest_sha256"] == "abc" and loaded.meta["epoch"] == 1
    assert loaded.meta["history"] == [{"epoch": 1, "loss": 0.5}]
    assert loaded.optimizer is not None and "state" in loaded.optimizer
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    assert len(sha256_file(path)) == 64
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary files left


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_truncated_or_garbage(saved, tmp_path, cut):
    _, path = saved
    raw = path.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(raw[: int(len(raw) * cut)] if cut else b"\x00garbage" * 50)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(bad)


def test_not_a_moleport_checkpoint(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save(build_model("mobilenet").state_dict(), p)
    with pytest.raises(CheckpointError, match="not a moleport checkpoint"):
        load_checkpoint(p)


def test_architecture_mismatch(saved):
    with pytest.raises(CheckpointError, match="architecture mismatch"):
        load_checkpoint(saved[1], expected_arch="mobilenet_v2")


def test_state_dict_that_does_not_fit(saved, tmp_path):
    data = torch.load(saved[1], weights_only=True)
    data["architecture"] = "mobilenet_v2"
    data["spec"]["architecture"] = "mobilenet_v2"
    p = tmp_path / "wrong.pt"
    torch.save(data, p)
    with pytest.raises(CheckpointError, match="does not fit architecture 'mobilenet_v2'"):
        load_checkpoint(p)
