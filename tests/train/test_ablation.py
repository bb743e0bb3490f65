import numpy as np
import torch

from moleport.train.ablation import AblationConfig, sample_batch, train_budgeted, val_subset
from moleport.spec import ModelSpec


def test_sample_batch_is_half_melanoma():
    y = np.array([1] * 5 + [0] * 50)
    idx = sample_batch(y, 16, np.random.default_rng(0))
    assert len(idx) == 16 and y[idx].sum() == 8


def test_val_subset_keeps_every_melanoma():
    y = np.array([1] * 7 + [0] * 100)
    keep = val_subset(y, 20, seed=0)
    assert y[keep].sum() == 7 and len(keep) == 27 and np.all(np.diff(keep) > 0)


def test_sog_variant_puts_colour_constancy_in_the_spec():
    assert AblationConfig.of("d_sog").color_constancy == "shades-of-gray-p6"
    assert ModelSpec("mobilenet", color_constancy=AblationConfig.of("d_sog").color_constancy).color_constancy


def test_budgeted_training_freezes_the_prefix():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(12, 64, 64, 3), dtype=np.uint8)
    y = np.array([0, 1] * 6)
    cfg = AblationConfig.of("c_augment", weights=None, budget_s=0.5, batch_size=4)
    model, log = train_budgeted(cfg, x, y, ModelSpec("mobilenet", input_size=64))
    assert log[-1]["step"] >= 1
    assert not any(p.requires_grad for p in model.features[:cfg.freeze_blocks].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
