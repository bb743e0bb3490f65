"""TFLite export: fp32 and fp16 (weights) via ONNX -> onnx2tf; int8 via litert-torch from the int8 backbone
program that ExecuTorch's int8 is lowered from too (:func:`to_tflite_int8`). All carry MediaPipe metadata.

Why two converters: onnx2tf quantizes the whole graph (its int8 also quantized the in-graph colour
constancy, x**6 and exp/log, and the sigmoid head, and made the input/output tensors int8) and has no
way to keep chosen ops in float. litert-torch (Google's maintained PyTorch -> LiteRT converter) takes the
PT2E-quantized graph as it is: what is quantized is decided once, by the PT2E quantizer, for both
ExecuTorch and TFLite, and everything outside the backbone stays float with float32 input and output.

onnx2tf traps handled here:
- it rewrites its input .onnx in place, so it converts a private copy in a temporary folder;
- for NHWC RGB inputs it downloads a sample-image ``.npy`` from GitHub unless a file of that
  name is in the working directory; we write one there from the caller's own images.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moleport.export.onnx import to_onnx
from moleport.export.wrapper import INPUT_NAME
from moleport.spec import ModelSpec

PRECISIONS = ("fp32", "fp16")  # onnx2tf; int8: to_tflite_int8
TMP_PREFIX = "moleport-tflite-"  # + "<pid>-": a killed run's folder is removed by the next run
#: onnx2tf output suffix for each precision.
ONNX2TF_SUFFIX = {"fp32": "_float32.tflite", "fp16": "_float16.tflite"}
#: The file name onnx2tf looks for in the working directory before trying to download it.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


class TfliteExportError(RuntimeError):
    """onnx2tf failed, or its output does not honour the input contract."""


@dataclass(frozen=True)
class TfliteInfo:
    """General model information written into the TFLite Model Metadata."""

    name: str
    version: str
    author: str = "moleport"
    license: str = "Apache-2.0"
    description: str = ("Melanoma vs nevus decision support (not a diagnosis). Input: RGB 224x224, "
                        "float 0-255 (normalised inside). Output: [P(nevus), P(melanoma)].")


def _calibration_array(calib, spec: ModelSpec) -> np.ndarray:
    s = spec.input_size
    x = np.asarray(calib)
    if x.ndim != 4 or x.shape[1:] != (s, s, 3):
        raise TfliteExportError(f"calibration images must be N x {s} x {s} x 3 RGB, got shape {x.shape}")
    if len(x) == 0:
        raise TfliteExportError("calibration set is empty")
    return x.astype(np.float32)


def _run_onnx2tf(onnx_path: Path, work: Path, sample: np.ndarray) -> Path:
    """Convert ``onnx_path`` inside ``work``; returns onnx2tf's output folder."""
    import onnx2tf

    np.save(work / ONNX2TF_SAMPLE, sample[:20])
    out = work / "tf"
    with contextlib.chdir(work):
        try:
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(out),
                            not_use_onnxsim=True, keep_shape_absolutely_input_names=[INPUT_NAME],
                            copy_onnx_input_output_names_to_tflite=True, verbosity="error")
        except SystemExit as exc:  # onnx2tf calls sys.exit(1) on errors
            raise TfliteExportError(f"onnx2tf exited with status {exc.code}") from exc
    return out


def to_tflite(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precisions=PRECISIONS,
              calib=None, info: TfliteInfo | None = None) -> dict[str, Path]:
    """Write ``model_<precision>.tflite`` (fp32/fp16) for each of ``precisions`` into ``out_dir``.

    One onnx2tf run yields both. ``calib`` (N x S x S x 3 images, 0..255) only feeds onnx2tf's own
    output check; without it deterministic gradient images do.
    """
    precisions = tuple(precisions)
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown or not precisions:
        raise ValueError(f"unknown onnx2tf precision(s) {unknown or precisions}; choose from {PRECISIONS} "
                         f"(int8: to_tflite_int8)")
    images = _calibration_array(calib, spec) if calib is not None else _probe_images(spec)
    info = info or TfliteInfo(name=spec.architecture, version=str(spec.version))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    from moleport.export.leftovers import remove_stale

    remove_stale(tempfile.gettempdir(), TMP_PREFIX)  # what a killed earlier export left behind
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        work = Path(tmp)
        onnx_copy = to_onnx(model, spec, work, filename="model.onnx")
        tf_dir = _run_onnx2tf(onnx_copy, work, images)
        for precision in precisions:
            produced = tf_dir / ("model" + ONNX2TF_SUFFIX[precision])
            if not produced.is_file():
                raise TfliteExportError(f"onnx2tf produced no {produced.name} for {precision}")
            target = out_dir / f"model_{precision}.tflite"
            target.write_bytes(add_metadata(produced.read_bytes(), spec, info))
            check_io(target, spec)
            written[precision] = target
    return written


def to_tflite_int8(backbone_int8: nn.Module, spec: ModelSpec, out_dir: str | Path,
                   info: TfliteInfo | None = None) -> Path:
    """``model_int8.tflite`` from the int8 backbone program (the one ExecuTorch's int8 is lowered from).

    litert-torch converts the PT2E quantize/dequantize graph in its static-quantization mode, which folds
    them into TFLite's int8 kernels (per-channel int8 weights, int8 activations) for the backbone only;
    the wrapper's pre-processing and head are plain float ops, so the file has float32 input and output
    and MediaPipe's ImageClassifier reads it like the fp32 file.
    """
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    from moleport.export.wrapper import input_shape, wrap

    info = info or TfliteInfo(name=spec.architecture, version=str(spec.version))
    wrapped = wrap(backbone_int8, spec, "NHWC")
    example = (torch.zeros(input_shape(spec, "NHWC"), dtype=torch.float32),)
    # The config only selects the converter's STATIC q/dq mode; the quantization itself is in the graph.
    static = QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)))
    try:
        edge = litert_torch.convert(wrapped, example, quant_config=static)
        with tempfile.TemporaryDirectory(prefix="moleport-litert-") as tmp:
            edge.export(str(Path(tmp) / "int8.tflite"))
            flat = (Path(tmp) / "int8.tflite").read_bytes()
    except Exception as exc:  # noqa: BLE001 — the converter raises many types
        raise TfliteExportError(f"litert-torch could not convert the int8 backbone: {type(exc).__name__}: {exc}") from exc
    target = Path(out_dir) / "model_int8.tflite"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(add_metadata(flat, spec, info))
    check_io(target, spec)
    inp, out = io_details(target)
    if inp["dtype"] != "float32" or out["dtype"] != "float32":
        raise TfliteExportError(f"{target.name}: input/output are {inp['dtype']}/{out['dtype']}, expected float32")
    return target


def _probe_images(spec: ModelSpec) -> np.ndarray:
    """Deterministic gradient images, used only for onnx2tf's own output check when no calibration set is given."""
    s = spec.input_size
    ramp = np.linspace(0.0, 255.0, s, dtype=np.float32)
    img = np.stack([np.broadcast_to(ramp[None, :], (s, s)), np.broadcast_to(ramp[:, None], (s, s)),
                    np.full((s, s), 128.0, np.float32)], axis=-1)
    return img[None]


def add_metadata(tflite_model: bytes, spec: ModelSpec, info: TfliteInfo) -> bytes:
    """Embed MediaPipe/TFLite Model Metadata: image input (mean 0, std 1 = raw 0..255), labels file, general info."""
    from moleport.export import mediapipe_shim

    mediapipe_shim.install()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.python.metadata import metadata
    from mediapipe.tasks.python.metadata.metadata_writers import image_classifier, metadata_writer

    labels = metadata_writer.Labels().add(list(spec.labels))
    writer = image_classifier.MetadataWriter.create(bytearray(tflite_model), input_norm_mean=[0.0],
                                                    input_norm_std=[1.0], labels=labels)
    populated, _ = writer.populate()
    del writer  # its __del__ cleans a temp folder; run it now, not at interpreter shutdown
    # The task writer fills a generic name/description; rewrite the general fields, keep the rest.
    shown = metadata.MetadataDisplayer.with_model_buffer(populated)
    md = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(shown.get_metadata_buffer(), 0))
    md.name, md.version, md.description = info.name, info.version, info.description
    md.author, md.license = info.author, info.license
    files = {n: shown.get_associated_file_buffer(n) for n in shown.get_packed_associated_file_list()}
    import flatbuffers

    builder = flatbuffers.Builder(0)
    builder.Finish(md.Pack(builder), metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = metadata.MetadataPopulator.with_model_buffer(bytearray(tflite_model))
    populator.load_metadata_buffer(builder.Output())
    populator.load_associated_file_buffers(files)
    populator.populate()
    result = bytes(populator.get_model_buffer())
    del populator, shown
    return result


def io_details(path: str | Path) -> tuple[dict, dict]:
    """(input, output) details of a .tflite file: name, shape, dtype and int8 quantization (scale, zero point)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))

    def describe(d: dict) -> dict:
        scale, zero = d["quantization"]
        quant = {"scale": float(scale), "zero_point": int(zero)} if scale else None
        return {"name": d["name"], "shape": [int(v) for v in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name, "quantization": quant}

    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise TfliteExportError(f"{path}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
    return describe(inputs[0]), describe(outputs[0])


def check_io(path: Path, spec: ModelSpec) -> None:
    """The converted model keeps the NHWC [1, S, S, 3] input and a [1, 2] output."""
    s = spec.input_size
    inp, out = io_details(path)
    if inp["shape"] != [1, s, s, 3] or out["shape"] != [1, 2]:
        raise TfliteExportError(f"{path.name}: shapes {inp['shape']} -> {out['shape']}, expected "
                                f"[1, {s}, {s}, 3] -> [1, 2] (onnx2tf changed the layout?)")
