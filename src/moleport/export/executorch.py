"""ExecuTorch export: ``.pte`` lowered to XNNPACK, fp32 and int8 (PT2E, XNNPACKQuantizer).

The program takes the NHWC float32 0..255 pixels and returns ``[P(nevus), P(melanoma)]``.
In the int8 program only the backbone is int8 (quantize/dequantize at its edges, XNNPACK's QS8
kernels inside); the pre-processing and the head stay fp32, with fp32 input and output. Labels, threshold and the
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
#: Operators allowed to stay outside XNNPACK: graph plumbing and views, no arithmetic (``index_select``: the
#: in-graph test-time augmentation's flips, exact copies XNNPACK has no kernel for; moleport.export.wrapper.GridViews).
ALLOWED_OUTSIDE_XNNPACK = frozenset({
    "getitem", "aten_index_select_default", "aten_view_copy_default", "aten_as_strided_copy_default", "aten_squeeze_copy_dims",
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


def int8_backbone(model: nn.Module, spec: ModelSpec, *, program: str | Path | None = None, calib=None) -> nn.Module:
    """The int8 backbone the int8 artifacts are lowered from: the saved quantization-aware program when
    given (``moleport.train.qat``), else post-training quantization calibrated on ``calib`` training images.
    Either way only the backbone is quantized; the wrapper around it keeps the pre/post-processing fp32."""
    from moleport.models import quant
    from moleport.preprocess import normalize_batch

    if program is not None:
        return quant.load_program(program)
    if calib is None or len(calib) == 0:
        raise ExecutorchExportError("int8 needs the quantization-aware program or calibration images from the "
                                    "training split")
    batches = (normalize_batch(torch.as_tensor(np.asarray(calib[i:i + CALIB_BATCH])), spec)
               for i in range(0, len(calib), CALIB_BATCH))
    return quant.post_training_quantize(model, spec.input_size, batches)


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
                  calib=None, int8_backbone_module: nn.Module | None = None) -> Path:
    """Write ``model_<precision>.pte`` into ``out_dir``; int8 needs ``int8_backbone_module`` (see
    :func:`int8_backbone`) or ``calib`` (training images, N x S x S x 3)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if precision not in PRECISIONS:
        raise ValueError(f"ExecuTorch precision must be one of {PRECISIONS}, got {precision!r}")
    backbone = model
    if precision == "int8":
        from moleport.models.quant import fold_weight_quantization

        backbone = int8_backbone_module if int8_backbone_module is not None else int8_backbone(model, spec, calib=calib)
        backbone = fold_weight_quantization(backbone)
    module = wrap(backbone, spec, "NHWC")  # pre/post-processing fp32 around the (int8) backbone
    example = (torch.zeros(input_shape(spec, "NHWC"), dtype=torch.float32),)
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
