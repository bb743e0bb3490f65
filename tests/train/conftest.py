import hashlib

import numpy as np
import pytest
from PIL import Image

from moleport.data.manifest import Item, Manifest


def _image(rng: np.random.Generator, melanoma: bool, size: int) -> np.ndarray:
    """Random texture; melanomas get a dark blob so a model can learn something."""
    img = rng.integers(120, 230, size=(size, size, 3), dtype=np.uint8)
    if melanoma:
        c = size // 2
        img[c - size // 4:c + size // 4, c - size // 4:c + size // 4] //= 3
    return img


@pytest.fixture
def tiny_manifest(tmp_path) -> Manifest:
    """24 random PNGs (64x64), 12/6/6 train/val/test, half melanoma, built directly as a Manifest."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(24):
        split = "train" if i < 12 else ("val" if i < 18 else "test")
        label = "melanoma" if i % 2 else "nevus"
        img = _image(rng, label == "melanoma", 64)
        path = tmp_path / "imgs" / f"img{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(img).save(path)
        items.append(Item(file=str(path), sha256=hashlib.sha256(img.tobytes()).hexdigest(), label=label,
                          split=split, lesion_id=f"L{i}", source="test"))
    return Manifest(items=tuple(items), seed=0, source={"kind": "unit-test"})


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep decoded split caches and artifacts of tests inside tmp_path."""
    monkeypatch.setenv("MOLEPORT_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.chdir(tmp_path)
