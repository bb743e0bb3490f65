"""moleport.procstate: process-wide settings changed for a block come back afterwards, also on errors."""
from __future__ import annotations

import types

import pytest
import torch
from PIL import Image, ImageFile

from moleport.preprocess import load_image
from moleport.procstate import attributes, torch_threads


def test_torch_threads_restores_the_count_also_on_errors():
    before = torch.get_num_threads()
    with torch_threads(1) as inside:
        assert inside == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None) as inside:
        assert inside == before


def test_attributes_restores_values_and_absence():
    ns = types.SimpleNamespace(a=1)
    with pytest.raises(KeyError), attributes(ns, a=2, b=3):
        assert (ns.a, ns.b) == (2, 3)
        raise KeyError("x")
    assert ns.a == 1 and not hasattr(ns, "b")


def test_loading_an_image_leaves_pil_settings_as_they_were(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path)
    with attributes(ImageFile, LOAD_TRUNCATED_IMAGES=True), attributes(Image, MAX_IMAGE_PIXELS=123_456_789):
        load_image(path, 8)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS == 123_456_789
