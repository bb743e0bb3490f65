"""Every export format, declared once (as Ultralytics' ``export_formats()`` table).

A :class:`Format` names its precisions, its convert function (one job -> {precision: file or the error
it raised}), how its files' input/output are described in manifest.json, which part of the graph runs
at which precision, and its converter's name. ``export/bundle.py`` loops over :data:`FORMATS`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

import moleport
from moleport.export.wrapper import INPUT_NAME, OUTPUT_NAME, export_contract
from moleport.spec import ModelSpec


@dataclass
class ExportJob:
    """What every converter gets: the fp32 model, its spec, the calibration images and the int8 backbone."""

    model: nn.Module
    spec: ModelSpec
    name: str
    meta: dict[str, Any]
    calib: np.ndarray | None = None
    int8_program: Path | None = None  # the quantization-aware backbone (moleport.train.qat); else PTQ on calib
    _int8: nn.Module | None = field(default=None, repr=False)
    _w8: tuple[nn.Module, dict | None] | None = field(default=None, repr=False)

    def int8_backbone(self) -> nn.Module:
        """The one int8 backbone both int8 artifacts are lowered from (built once per export)."""
        from moleport.export.executorch import int8_backbone

        if self._int8 is None:
            self._int8 = int8_backbone(self.model, self.spec, program=self.int8_program, calib=self.calib)
        return self._int8

    def w8_model(self) -> tuple[nn.Module, dict | None]:
        """The fp32 model Core ML W8 is converted from, and its bias correction's summary (manifest.json): the
        model with its biases moved to cancel the mean output shift of the int8 weights W8 stores
        (:mod:`moleport.models.bias_correction`, weights only, the first :data:`W8_CORRECTION_N` calibration
        images); without calibration images (no split manifest), the model itself and None."""
        if self._w8 is None:
            self._w8 = (self.model, None) if self.calib is None else w8_bias_corrected(self.model, self.spec, self.calib)
        return self._w8

    @property
    def version(self) -> str:
        return f"{moleport.__version__}+spec{self.spec.version}"


Result = dict[str, tuple["Path | Exception", float]]

#: Training images (the first of the export's calibration draw) that Core ML W8's bias correction is measured on.
W8_CORRECTION_N = 128


def w8_bias_corrected(model: nn.Module, spec: ModelSpec, calib: np.ndarray) -> tuple[nn.Module, dict]:
    """``model`` bias-corrected for the int8 weights of every conv Core ML W8 quantizes (more than
    ``W8_FP32_MAX_ELEMENTS`` weights; activations stay float), on ``calib`` (uint8 NHWC training images)."""
    import torch

    from moleport.export.coreml import W8_FP32_MAX_ELEMENTS
    from moleport.models.bias_correction import bias_corrected
    from moleport.preprocess import normalize_batch

    x = calib[:W8_CORRECTION_N]
    batches = [normalize_batch(torch.from_numpy(np.ascontiguousarray(x[i:i + 32])), spec) for i in range(0, len(x), 32)]
    quantized = lambda _name, layer: isinstance(layer, nn.Conv2d) and layer.weight.numel() > W8_FP32_MAX_ELEMENTS  # noqa: E731
    return bias_corrected(model, batches, quantized, sites=("weight",))


def _timed(fn: Callable[[], Path]) -> tuple[Path | Exception, float]:
    t0 = time.perf_counter()
    try:
        return fn(), time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 — recorded as this variant's failure
        return exc, time.perf_counter() - t0


def _onnx(job: ExportJob, work: Path, precisions: tuple[str, ...]) -> Result:
    from moleport.export import onnx

    return {p: _timed(lambda p=p: onnx.to_onnx(job.model, job.spec, work, p)) for p in precisions}


def _tflite(job: ExportJob, work: Path, precisions: tuple[str, ...]) -> Result:
    """fp32/fp16 from one onnx2tf run; int8 by litert-torch from the int8 backbone (ExecuTorch's too)."""
    from moleport.export import tflite

    info = tflite.TfliteInfo(name=job.name, version=job.version)
    floats = tuple(p for p in precisions if p != "int8")
    out: Result = {}
    if floats:
        t0 = time.perf_counter()
        try:
            paths = tflite.to_tflite(job.model, job.spec, work, floats, info=info)
            out.update({p: (paths[p], time.perf_counter() - t0) for p in floats})
        except Exception as exc:  # noqa: BLE001
            out.update({p: (exc, time.perf_counter() - t0) for p in floats})
    if "int8" in precisions:
        out["int8"] = _timed(lambda: tflite.to_tflite_int8(job.int8_backbone(), job.spec, work, info=info))
    return out


def _coreml(job: ExportJob, work: Path, precisions: tuple[str, ...]) -> Result:
    from moleport.export import coreml

    user = {"moleport.metrics": job.meta.get("metrics") or {},
            "moleport.checkpoint_sha256": job.meta.get("checkpoint_sha256")}
    info = coreml.CoremlInfo(version=job.version, user_defined=user)
    def one(p: str) -> Path:
        model = job.w8_model()[0] if p == "w8" else job.model
        return coreml.to_coreml(model, job.spec, work, p, info=info)

    return {p: _timed(lambda p=p: one(p)) for p in precisions}


def _executorch(job: ExportJob, work: Path, precisions: tuple[str, ...]) -> Result:
    from moleport.export import executorch

    def one(p: str) -> Path:
        backbone = job.int8_backbone() if p == "int8" else None
        return executorch.to_executorch(job.model, job.spec, work, p, int8_backbone_module=backbone)

    return {p: _timed(lambda p=p: one(p)) for p in precisions}


def _tensor_io(spec: ModelSpec) -> tuple[dict, dict]:
    s = spec.input_size
    tensor_in = {"name": INPUT_NAME, "shape": [1, s, s, 3], "layout": "NHWC", "dtype": "float32",
                 "range": export_contract(spec)["range"], "color_order": "RGB", "quantization": None}
    tensor_out = {"name": OUTPUT_NAME, "shape": [1, 2], "dtype": "float32", "labels": list(spec.labels),
                  "quantization": None}
    return tensor_in, tensor_out


def _io_onnx(path: Path, spec: ModelSpec) -> tuple[dict, dict]:
    return _tensor_io(spec)


def _io_tflite(path: Path, spec: ModelSpec) -> tuple[dict, dict]:
    from moleport.export.tflite import io_details

    tensor_in, tensor_out = _tensor_io(spec)
    got_in, got_out = io_details(path)
    tensor_in.update(got_in, name=got_in["name"], layout="NHWC")
    tensor_out.update(got_out)
    return tensor_in, tensor_out


def _io_coreml(path: Path, spec: ModelSpec) -> tuple[dict, dict]:
    from moleport.export.coreml import check_package

    desc = check_package(path, spec)
    return desc["input"], desc["output"]


def _io_executorch(path: Path, spec: ModelSpec) -> tuple[dict, dict]:
    tensor_in, tensor_out = _tensor_io(spec)
    tensor_in["method"] = tensor_out["method"] = "forward"
    return tensor_in, tensor_out


_FP32 = {"preprocess": "fp32", "backbone": "fp32", "head": "fp32", "io": "fp32"}
_INT8 = {"preprocess": "fp32", "backbone": "int8 (per-channel int8 weights, int8 activations)", "head": "fp32",
         "io": "fp32 pixels in, fp32 probabilities out"}


def _map_tflite(precision: str) -> dict[str, str]:
    if precision == "fp16":  # TFLite float16 quantization: weights stored fp16, dequantized at load
        return {"preprocess": "fp32", "backbone": "fp16 weights, dequantized to fp32 at load (fp32 compute on CPU)",
                "head": "fp32", "io": "fp32"}
    return _INT8 if precision == "int8" else _FP32


def _map_coreml(precision: str) -> dict[str, str]:
    from moleport.export.coreml import precision_map

    return precision_map(precision)


@dataclass(frozen=True)
class Format:
    name: str
    precisions: tuple[str, ...]
    convert: Callable[[ExportJob, Path, tuple[str, ...]], Result]
    describe_io: Callable[[Path, ModelSpec], tuple[dict, dict]]
    precision_map: Callable[[str], dict[str, str]]
    converter: Callable[[dict[str, str | None], str], str]


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ("fp32",), _onnx, _io_onnx, lambda p: _FP32,
           lambda t, p: f"torch.onnx dynamo (torch {t['torch']}), opset 18"),
    Format("tflite", ("fp32", "fp16", "int8"), _tflite, _io_tflite, _map_tflite,
           lambda t, p: (f"litert-torch {t.get('litert-torch')} from the int8 PT2E backbone (torchao {t['torchao']})"
                         if p == "int8" else f"onnx2tf {t['onnx2tf']} (tensorflow {t['tensorflow']})")),
    Format("coreml", ("fp32", "fp16", "w8"), _coreml, _io_coreml, _map_coreml,
           lambda t, p: f"coremltools {t['coremltools']} (torch.jit.trace, mlprogram)"),
    Format("executorch", ("fp32", "int8"), _executorch, _io_executorch,
           lambda p: _INT8 if p == "int8" else _FP32,
           lambda t, p: f"executorch {t['executorch']} XNNPACK" + (f" (torchao {t['torchao']} PT2E)" if p == "int8" else "")),
)}
