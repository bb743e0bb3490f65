"""ExecuTorch export: ``.pte`` lowered to XNNPACK, fp32 and int8 (PT2E, XNNPACKQuantizer).

The program takes the NHWC float32 0..255 pixels and returns ``[P(nevus), P(melanoma)]``
(int8 programs quantize inside, so the contract is the same). Labels, threshold and the
input contract travel inside the program as constant methods.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moleport.export.wrapper import export_contract, input_shape, wrap
from moleport.spec import ModelSpec

PRECISIONS = ("fp32", "int8")
#: Operators allowed to stay outside XNNPACK: graph plumbing and views, no arithmetic.
ALLOWED_OUTSIDE_XNNPACK = frozenset({
    "getitem", "aten_view_copy_default", "aten_as_strided_copy_default", "aten_squeeze_copy_dims",
    "aten_squeeze_copy_dim", "aten_unsqueeze_copy_default", "aten_clone_default", "dim_order_ops__clone_dim_order_default",
})
log = logging.getLogger(__name__)


class ExecutorchExportError(RuntimeError):
    """Lowering failed, or compute ops were left outside the XNNPACK delegate."""


#: Images per calibration forward pass (int8).
CALIB_BATCH = 32


def constant_methods(spec: ModelSpec) -> dict[str, object]:
    """Constant methods embedded in every .pte (strings/floats are supported by the ExecuTorch emitter)."""
    return {"get_labels": list(spec.labels), "get_threshold": float(spec.threshold),
            "get_positive_class": spec.positive_class, "get_input_contract": json.dumps(export_contract(spec), sort_keys=True),
            "get_spec": spec.to_json(indent=None)}


def _quantize(wrapped: nn.Module, example: tuple, calib: np.ndarray) -> nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    # A dynamic batch dimension lets calibration run in batches: the histogram observers cost
    # about the same per call whatever the batch, so this is ~CALIB_BATCH times faster than one
    # image at a time. The caller re-exports the converted module at batch 1.
    # (the example must have batch > 1: torch.export specialises a size-1 dimension to a constant)
    batch = torch.export.Dim("batch", min=1, max=CALIB_BATCH)
    pair = (torch.cat([example[0], example[0]]),)
    exported = torch.export.export(wrapped, pair, dynamic_shapes=({0: batch},))
    prepared = prepare_pt2e(exported.module(), quantizer)
    with torch.no_grad():
        for start in range(0, len(calib), CALIB_BATCH):
            chunk = np.asarray(calib[start:start + CALIB_BATCH], dtype=np.float32)
            prepared(torch.as_tensor(chunk))
    return convert_pt2e(prepared)


def delegation_check(edge_program) -> dict[str, object]:
    """Summary of what XNNPACK took; raises if any op outside :data:`ALLOWED_OUTSIDE_XNNPACK` is left out."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge_program.exported_program().graph_module)
    log.info("ExecuTorch delegation:\n%s", info.get_summary())
    outside = {op: b.non_delegated for op, b in info.delegation_by_operator.items() if b.non_delegated}
    unexpected = sorted(set(outside) - ALLOWED_OUTSIDE_XNNPACK)
    if unexpected:
        raise ExecutorchExportError(f"ops left outside XNNPACK: {unexpected} (allowed: {sorted(ALLOWED_OUTSIDE_XNNPACK)})")
    return {"delegated_subgraphs": info.num_delegated_subgraphs, "delegated_nodes": info.num_delegated_nodes,
            "non_delegated_nodes": info.num_non_delegated_nodes, "outside": outside}


def to_executorch(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precision: str = "fp32",
                  calib=None) -> Path:
    """Write ``model_<precision>.pte`` into ``out_dir``; int8 needs ``calib`` (training images, N x S x S x 3)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if precision not in PRECISIONS:
        raise ValueError(f"ExecuTorch precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8" and (calib is None or len(calib) == 0):
        raise ExecutorchExportError("int8 ExecuTorch needs calibration images from the training split")
    wrapped = wrap(model, spec, "NHWC")
    example = (torch.zeros(input_shape(spec, "NHWC"), dtype=torch.float32),)
    module = _quantize(wrapped, example, calib) if precision == "int8" else wrapped
    try:
        exported = torch.export.export(module, example)
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()],
                                           constant_methods=constant_methods(spec))
    except Exception as exc:  # export/lowering raise many types
        raise ExecutorchExportError(f"ExecuTorch lowering failed ({precision}): {exc}") from exc
    delegation_check(edge)
    out = Path(out_dir) / f"model_{precision}.pte"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(edge.to_executorch().buffer)
    return out
