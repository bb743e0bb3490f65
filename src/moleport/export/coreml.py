"""Core ML export: ``.mlpackage`` ML Program (fp32, mixed fp16, int8 weights) with an RGB image input and classifier labels.

The Core ML input is an image (iOS passes a CVPixelBuffer), converted with scale 1 / bias 0 so
the graph receives raw 0..255 planar pixels and normalises them itself, exactly as the other
artifacts do. Conversion works on Linux; prediction needs macOS, so nothing here calls predict.

Reduced precision touches the CNN backbone only. The program is split by dataflow (see
:func:`backbone_op_names`): *pre-processing* is every op not downstream of the backbone's first
``conv`` (pixel scaling, the in-graph colour constancy with its x**6 moments, exp/log and clamps,
mean/std normalisation, the padding before the first conv); the *backbone* is every op downstream
of that conv and upstream of the last ``linear``/``matmul`` (the logit); the *head* is the rest
(temperature, sigmoid, ``1 - p``, concat, classify). :func:`precision_map` says the same for
manifest.json.

- ``fp16``: only backbone ops compute in float16 (``FP16ComputePrecision(op_selector=...)``);
  pre-processing, head, the image input and the probability output stay float32. Running the
  colour constancy (x**6 means over 50,176 pixels, exp/log) and the sigmoid head in fp16 moved
  P(melanoma) by ~0.01 and flipped labels on a real run.
- ``w8``: weight-only int8 (per-output-channel symmetric, coremltools' ``linear_quantize_weights``
  pass run at the end of the conversion pipeline) on the backbone's conv/linear weights larger than
  :data:`W8_FP32_MAX_ELEMENTS` (the small early layers stay fp32), stored as
  ``constexpr_affine_dequantize`` (iOS16); every op computes in float32. ~1/4 of the fp32 weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moleport.export.wrapper import INPUT_NAME, input_shape, wrap
from moleport.spec import ModelSpec

PRECISIONS = ("fp32", "fp16", "w8")
#: op types that start (``conv``) and end (``linear``/``matmul``: the logit) the backbone.
BACKBONE_FIRST = ("conv",)
BACKBONE_LAST = ("linear", "matmul")
#: ops whose const weights the w8 variant quantises (backbone only).
W8_WEIGHT_OPS = ("conv", "linear", "matmul")
#: w8 keeps weight tensors of at most this many elements in fp32 (as coremltools' own
#: ``weight_threshold`` does, default 2048). In MobileNetV1 these are the early, small layers
#: (stem conv, depthwise convs up to 512 channels, the first two pointwise convs): 47,552 of
#: 3.19M weights, +124 KB, and the layers whose int8 error moves P(melanoma) most. Measured on
#: the quick-default checkpoint (32 images, numpy reference; an equivalent PyTorch simulation
#: agrees), max / mean |dP| vs PyTorch: every weight int8 6.1e-2 / 1.8e-2; stem conv fp32
#: 3.9e-2 / 1.2e-2; <= 2048 fp32 1.2e-2 / 4.6e-3; <= 8192 fp32 8.2e-3 / 2.8e-3.
#: weight.bin: fp32 12,791,808 bytes, w8 3,406,208 (26.6%; all-int8 would be 3,281,728).
W8_FP32_MAX_ELEMENTS = 8192
#: Core ML classifier outputs: the argmax label and the {label: probability} dictionary.
LABEL_OUTPUT = "classLabel"
PROBS_OUTPUT = LABEL_OUTPUT + "_probs"


class CoremlExportError(RuntimeError):
    """coremltools could not convert the model, or the result breaks the input contract."""


@dataclass(frozen=True)
class CoremlInfo:
    """Model metadata written into the .mlpackage."""

    author: str = "moleport"
    license: str = "Apache-2.0"
    version: str = "1"
    description: str = ("Melanoma vs nevus decision support for a person and a clinician; not a diagnosis. "
                        "Input: RGB 224x224 image. Output: probabilities {nevus, melanoma}; apply the "
                        "threshold in user-defined metadata to P(melanoma), not classLabel (argmax).")
    user_defined: dict[str, Any] = field(default_factory=dict)


#: coremltools turns the in-graph ``x * scale + shift`` normalisation into a ``batch_norm`` with
#: mean 0, variance 1 and epsilon 1e-5, which scales every pixel by 1/sqrt(1 + 1e-5): the parity
#: harness measured max |dP| 2.4e-4 from that alone on a trained MobileNet (fp32 gate: 1e-4).
SKIPPED_PASSES = ("common::fuse_elementwise_to_batchnorm",)


def _pass_pipeline(ct, precision: str = "fp32"):
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(list(SKIPPED_PASSES))
    if precision == "w8":
        _register_w8_pass()
        pipeline.append_pass(W8_PASS)
    return pipeline


def precision_map(precision: str) -> dict[str, str]:
    """Which part of the Core ML program runs in which precision, for manifest.json."""
    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {PRECISIONS}, got {precision!r}")
    backbone = {"fp32": "fp32", "fp16": "fp16", "w8": "int8 weights, fp32 compute"}[precision]
    return {"preprocess": "fp32", "backbone": backbone, "head": "fp32",
            "io": "fp32 image in, fp32 probabilities out"}


def backbone_op_names(block) -> set[str]:
    """Names of a MIL block's backbone ops: downstream of the first ``conv`` (inclusive) and
    upstream of the last ``linear``/``matmul`` (inclusive) that is itself downstream of it.

    A dataflow walk, not program order, so pre-processing ops that the scheduler happens to
    place after the first conv, or head ops placed before the logit, are still classified by
    what they compute from. Const ops are never included (their values are cast where used).
    Raises :class:`CoremlExportError` when the block has no conv or no final linear.
    """
    ops = list(block.operations)
    first = next((op for op in ops if op.op_type in BACKBONE_FIRST), None)
    if first is None:
        raise CoremlExportError("Core ML program has no conv op: cannot locate the backbone")
    down = {id(first)}
    for op in ops[ops.index(first) + 1:]:  # block order is topological
        if any(v.op is not None and id(v.op) in down for v in _input_vars(op)):
            down.add(id(op))
    lasts = [op for op in ops if op.op_type in BACKBONE_LAST and id(op) in down]
    if not lasts:
        raise CoremlExportError("Core ML program has no linear/matmul after its first conv: "
                                "cannot locate the backbone's logit")
    up, stack = set(), [lasts[-1]]
    while stack:
        op = stack.pop()
        if id(op) in up:
            continue
        up.add(id(op))
        stack.extend(v.op for v in _input_vars(op) if v.op is not None)
    return {op.name for op in ops if id(op) in down and id(op) in up and op.op_type != "const"}


def _input_vars(op) -> list:
    out = []
    for value in op.inputs.values():
        out.extend(value if isinstance(value, (list, tuple)) else [value])
    return out


class _BackboneSelector:
    """``FP16ComputePrecision`` op selector: True (cast to fp16) for backbone ops only.

    The backbone is computed once per block, on the first call, before the pass inserts any cast.
    """

    def __init__(self):
        self._blocks: dict[int, tuple[Any, set[str]]] = {}

    def __call__(self, op) -> bool:
        block = op.enclosing_block
        if id(block) not in self._blocks:
            self._blocks[id(block)] = (block, backbone_op_names(block))  # keeps block alive: stable id
        return op.name in self._blocks[id(block)][1]


#: Our graph pass (registered on first use) that quantises the backbone weights; it runs at the
#: end of the conversion's own pass pipeline, so no second pipeline (which would re-fuse the
#: normalisation into a batch_norm, see SKIPPED_PASSES) runs after it.
W8_PASS = "moleport::w8_backbone_weights"


def _w8_config(block):
    """Per-channel symmetric int8 for the const weights of the backbone's conv/linear ops that
    have more than :data:`W8_FP32_MAX_ELEMENTS` elements."""
    import coremltools as ct
    import numpy as np

    backbone = backbone_op_names(block)
    op_config = ct.optimize.coreml.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype=np.int8, granularity="per_channel", weight_threshold=0)
    names = {}
    for op in block.operations:
        if op.op_type not in W8_WEIGHT_OPS or op.name not in backbone:
            continue
        weight = op.inputs.get("weight", op.inputs.get("y"))
        if (weight is not None and weight.op is not None and weight.op.op_type == "const"
                and int(np.prod(weight.shape)) > W8_FP32_MAX_ELEMENTS):
            names[weight.op.name] = op_config
    if not names:
        raise CoremlExportError(f"w8: no conv/linear weight in the backbone has more than "
                                f"{W8_FP32_MAX_ELEMENTS} elements; nothing to quantize")
    return ct.optimize.coreml.OptimizationConfig(global_config=None, op_name_configs=names)


def _register_w8_pass() -> None:
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY, register_pass

    if W8_PASS in PASS_REGISTRY:
        return

    @register_pass(namespace=W8_PASS.split("::")[0], name=W8_PASS.split("::")[1])
    class _W8BackboneWeights(AbstractGraphPass):
        def apply(self, prog):
            quantizer = PASS_REGISTRY["compression::linear_quantize_weights"]  # a fresh instance
            quantizer.config = _w8_config(prog.functions["main"])
            quantizer.apply(prog)


def to_coreml(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precision: str = "fp32",
              info: CoremlInfo | None = None) -> Path:
    """Write ``model_<precision>.mlpackage`` into ``out_dir``; returns its path (a directory).

    ``precision``: ``fp32``; ``fp16`` (backbone in fp16, pre-processing/head/IO in fp32);
    ``w8`` (int8 backbone weights, fp32 compute). See :func:`precision_map`.
    """
    import coremltools as ct
    import numpy as np

    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {PRECISIONS}, got {precision!r}")
    info = info or CoremlInfo()
    wrapped = wrap(model, spec, "NCHW")
    example = torch.zeros(input_shape(spec, "NCHW"), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, example, strict=True)
    image = ct.ImageType(name=INPUT_NAME, shape=example.shape, scale=1.0, bias=[0.0, 0.0, 0.0],
                         color_layout=ct.colorlayout.RGB)
    compute = (ct.transform.FP16ComputePrecision(op_selector=_BackboneSelector())
               if precision == "fp16" else ct.precision.FLOAT32)
    try:
        mlmodel = ct.convert(
            traced, source="pytorch", convert_to="mlprogram", inputs=[image],
            # fp32 probabilities: without this an fp16 program (iOS16+) gets an fp16 output
            outputs=[ct.TensorType(dtype=np.float32)],
            classifier_config=ct.ClassifierConfig(list(spec.labels), predicted_feature_name=LABEL_OUTPUT),
            compute_precision=compute,
            minimum_deployment_target=ct.target.iOS16, skip_model_load=True, pass_pipeline=_pass_pipeline(ct, precision))
    except CoremlExportError:
        raise
    except Exception as exc:  # coremltools raises many types
        raise CoremlExportError(f"coremltools failed to convert {spec.architecture} ({precision}): {exc}") from exc
    _describe(mlmodel, spec, info)
    out = Path(out_dir) / f"model_{precision}.mlpackage"
    out.parent.mkdir(parents=True, exist_ok=True)
    mlmodel.save(str(out))
    check_package(out, spec)
    return out


def _describe(mlmodel, spec: ModelSpec, info: CoremlInfo) -> None:
    mlmodel.author = info.author
    mlmodel.license = info.license
    mlmodel.short_description = info.description
    mlmodel.version = info.version
    mlmodel.input_description[INPUT_NAME] = "RGB image, 224x224; pixel values 0-255 (normalised inside the model)"
    mlmodel.output_description[PROBS_OUTPUT] = "Probabilities per label: " + ", ".join(spec.labels)
    mlmodel.output_description[LABEL_OUTPUT] = "Most probable label (argmax; not the clinical threshold)"
    user = {"moleport.spec": spec.to_json(indent=None), "moleport.threshold": str(spec.threshold),
            "moleport.labels": json.dumps(list(spec.labels))}
    user.update({k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in info.user_defined.items()})
    mlmodel.user_defined_metadata.update(user)


def check_package(path: Path, spec: ModelSpec) -> dict[str, Any]:
    """Reload the saved spec (no prediction) and check input/labels; returns a manifest-ready description."""
    import coremltools as ct

    m = ct.models.MLModel(str(path), skip_model_load=True)
    desc = m.get_spec().description
    if len(desc.input) != 1 or desc.input[0].type.WhichOneof("Type") != "imageType":
        raise CoremlExportError(f"{path.name}: expected one image input")
    img = desc.input[0].type.imageType
    if ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace) != "RGB":
        raise CoremlExportError(f"{path.name}: image input is not RGB")
    labels = _class_labels(m.get_spec())
    if labels != list(spec.labels) or desc.predictedProbabilitiesName != PROBS_OUTPUT:
        raise CoremlExportError(f"{path.name}: classifier labels {labels} / output {desc.predictedProbabilitiesName!r}, "
                                f"expected {list(spec.labels)} / {PROBS_OUTPUT!r}")
    return {"input": {"name": desc.input[0].name, "shape": [1, 3, int(img.height), int(img.width)],
                      "layout": "image", "color": "RGB", "dtype": "image (uint8 pixel buffer)", "range": [0, 255]},
            "output": {"name": desc.predictedProbabilitiesName, "labels": labels, "label_output": desc.predictedFeatureName}}


def _class_labels(model_spec) -> list[str]:
    """Labels of the ML Program's ``classify`` op (ML Programs keep them in the program, not the description)."""
    labels: list[str] = []
    for function in model_spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type != "classify":
                    continue
                for arg in op.inputs["classes"].arguments:
                    for item in arg.value.immediateValue.list.values:
                        labels.extend(item.immediateValue.tensor.strings.values)
    return labels
