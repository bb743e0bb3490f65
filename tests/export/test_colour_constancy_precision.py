"""The in-graph Shades-of-Gray illuminant, lowered to ExecuTorch/XNNPACK and to ONNX Runtime, against float64.

Reproduces the figures in README ("What parity caught") and docs/CLINICAL.md: a single fp32 global average
pool of x**6 over 224x224 synthetic images in XNNPACK is ~3e-5 (relative) off float64, which moved P(melanoma) past the
fp32 parity gate; the two-level mean of :class:`moleport.export.wrapper.ShadesOfGray` stays ~2e-7.
"""
import numpy as np
import pytest
import torch
from torch import nn

from moleport.export.wrapper import ShadesOfGray


class Illuminant(nn.Module):
    """The illuminant part of ShadesOfGray (same ops), for ``block`` 1 (one global mean) or the module's own."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def forward(self, px: torch.Tensor) -> torch.Tensor:
        x = px.permute(0, 3, 1, 2) * (1.0 / 255.0)
        x2 = x * x
        x6 = x2 * x2 * x2
        if self.block > 1:
            x6 = nn.functional.avg_pool2d(x6, self.block, self.block)
        return torch.exp(torch.log(torch.mean(x6, dim=(2, 3), keepdim=True) + 1e-12) * (1.0 / 6.0))


def _images(n: int = 40) -> torch.Tensor:
    """The embedded synthetic dermoscopy images (seed 0), as the default bundle's parity run sees them."""
    from moleport.data.synth import render, synth_labels

    labels = synth_labels(n, seed=0)
    return torch.tensor(np.stack([render(0, i, labels[i]) for i in range(n)]), dtype=torch.float32)


def _executorch(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    prog = to_edge_transform_and_lower(torch.export.export(module, (x[:1],)),
                                       partitioner=[XnnpackPartitioner()]).to_executorch()
    method = Runtime.get().load_program(prog.buffer).load_method("forward")
    return torch.cat([method.execute([x[i:i + 1]])[0] for i in range(len(x))])


def test_two_level_mean_keeps_the_xnnpack_illuminant_at_float64_precision(capsys):
    pytest.importorskip("executorch")
    x = _images()
    exact = (x.double().permute(0, 3, 1, 2) / 255.0).pow(6).mean(dim=(2, 3), keepdim=True).pow(1 / 6)
    block = ShadesOfGray(224).block
    errors = {}
    for b in (1, block):
        got = _executorch(Illuminant(b).eval(), x).double()
        errors[b] = ((got - exact).abs() / exact).max().item()
    with capsys.disabled():
        print(f"\nXNNPACK illuminant relative error vs float64: one global mean {errors[1]:.2e}, "
              f"two levels (block {block}) {errors[block]:.2e}")
    assert block == 14 and errors[block] < 1e-6
