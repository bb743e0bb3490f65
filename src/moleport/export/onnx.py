"""ONNX export: raw-pixel NHWC float32 input, ``[P(nevus), P(melanoma)]`` output, fixed batch 1."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from moleport.export.wrapper import INPUT_NAME, OUTPUT_NAME, input_shape, wrap
from moleport.spec import ModelSpec

OPSET = 18


class OnnxExportError(RuntimeError):
    """The ONNX exporter failed or produced a model that does not pass onnx.checker."""


def to_onnx(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precision: str = "fp32", *,
            layout: str = "NHWC", filename: str | None = None) -> Path:
    """Export ``model`` (normalised NCHW -> N x 1 logit) behind the pixel wrapper to ``out_dir/<name>.onnx``.

    The file is self-contained (no external data), opset :data:`OPSET`, checked with ``onnx.checker``.
    ``layout="NCHW"`` is only for converters that want planar input (the shipped ONNX is NHWC).
    """
    import onnx

    if precision != "fp32":
        raise ValueError(f"ONNX export supports precision 'fp32' only, got {precision!r}")
    default = "model_fp32.onnx" if layout == "NHWC" else "model_nchw_fp32.onnx"
    out = Path(out_dir) / (filename or default)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapped = wrap(model, spec, layout)
    example = torch.zeros(input_shape(spec, layout), dtype=torch.float32)
    try:
        program = torch.onnx.export(wrapped, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
        program.save(str(out), external_data=False)
    except Exception as exc:  # the exporter raises many unrelated types
        raise OnnxExportError(f"torch.onnx.export failed for {spec.architecture}: {exc}") from exc
    proto = onnx.load(str(out))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise OnnxExportError(f"{out}: onnx.checker rejected the exported model: {exc}") from exc
    _check_io(proto, spec, layout, out)
    return out


def _check_io(proto, spec: ModelSpec, layout: str, path: Path) -> None:
    """The graph has exactly the contract's input and output, with static shapes."""
    def dims(value_info) -> list[int]:
        return [d.dim_value for d in value_info.type.tensor_type.shape.dim]

    inputs, outputs = list(proto.graph.input), list(proto.graph.output)
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
        raise OnnxExportError(f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got "
                              f"{[i.name for i in inputs]} -> {[o.name for o in outputs]}")
    if dims(inputs[0]) != list(input_shape(spec, layout)) or dims(outputs[0]) != [1, 2]:
        raise OnnxExportError(f"{path}: shapes {dims(inputs[0])} -> {dims(outputs[0])}, expected "
                              f"{list(input_shape(spec, layout))} -> [1, 2]")
