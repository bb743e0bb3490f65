"""Core ML export: ``.mlpackage`` ML Program (fp32 / fp16 compute) with an RGB image input and classifier labels.

The Core ML input is an image (iOS passes a CVPixelBuffer), converted with scale 1 / bias 0 so
the graph receives raw 0..255 planar pixels and normalises them itself, exactly as the other
artifacts do. Conversion works on Linux; prediction needs macOS, so nothing here calls predict.
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

PRECISIONS = ("fp32", "fp16")
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


def _pass_pipeline(ct):
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(list(SKIPPED_PASSES))
    return pipeline


def to_coreml(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precision: str = "fp32",
              info: CoremlInfo | None = None) -> Path:
    """Write ``model_<precision>.mlpackage`` into ``out_dir``; returns its path (a directory)."""
    import coremltools as ct

    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {PRECISIONS}, got {precision!r}")
    info = info or CoremlInfo()
    wrapped = wrap(model, spec, "NCHW")
    example = torch.zeros(input_shape(spec, "NCHW"), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, example, strict=True)
    image = ct.ImageType(name=INPUT_NAME, shape=example.shape, scale=1.0, bias=[0.0, 0.0, 0.0],
                         color_layout=ct.colorlayout.RGB)
    try:
        mlmodel = ct.convert(
            traced, source="pytorch", convert_to="mlprogram", inputs=[image],
            classifier_config=ct.ClassifierConfig(list(spec.labels), predicted_feature_name=LABEL_OUTPUT),
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.iOS16, skip_model_load=True, pass_pipeline=_pass_pipeline(ct))
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
