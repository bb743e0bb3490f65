"""Tiny image folders and a tiny checkpoint for the evaluate-stage tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from eval_helpers import make_imagefolder


@pytest.fixture
def tiny_imagefolder(tmp_path) -> Path:
    return make_imagefolder(tmp_path / "tiny", n_per_class=4)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight MobileNet checkpoint with the default spec (threshold 0.5)."""
    torch = pytest.importorskip("torch")
    from moleport.models import build_model
    from moleport.models.checkpoint import save_checkpoint
    from moleport.spec import ModelSpec

    torch.manual_seed(0)
    model = build_model("mobilenet").eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(path, model, ModelSpec("mobilenet"), manifest_sha256=None)
