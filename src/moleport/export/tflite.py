"""TFLite export via ONNX -> onnx2tf: fp32, fp16 (weights) and full-integer int8, with MediaPipe metadata.

onnx2tf traps handled here:
- it rewrites its input .onnx in place, so it converts a private copy in a temporary folder;
- for NHWC RGB inputs it downloads a sample-image ``.npy`` from GitHub unless a file of that
  name is in the working directory; we write one there from the caller's own images;
- int8 calibration reads ``custom_input_op_name_np_data_path`` (our training images,
  mean 0 / std 1 because the graph takes raw 0..255 pixels).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from moleport.export.onnx import to_onnx
from moleport.export.wrapper import INPUT_NAME
from moleport.spec import ModelSpec

PRECISIONS = ("fp32", "fp16", "int8")
TMP_PREFIX = "moleport-tflite-"  # + "<pid>-": a killed run's folder is removed by the next run
#: onnx2tf output suffix for each precision.
ONNX2TF_SUFFIX = {"fp32": "_float32.tflite", "fp16": "_float16.tflite", "int8": "_full_integer_quant.tflite"}
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


@contextlib.contextmanager
def _working_directory(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _calibration_array(calib, spec: ModelSpec) -> np.ndarray:
    s = spec.input_size
    x = np.asarray(calib)
    if x.ndim != 4 or x.shape[1:] != (s, s, 3):
        raise TfliteExportError(f"calibration images must be N x {s} x {s} x 3 RGB, got shape {x.shape}")
    if len(x) == 0:
        raise TfliteExportError("calibration set is empty")
    return x.astype(np.float32)


def _run_onnx2tf(onnx_path: Path, work: Path, calib: np.ndarray | None, sample: np.ndarray) -> Path:
    """Convert ``onnx_path`` inside ``work``; returns onnx2tf's output folder."""
    import onnx2tf

    np.save(work / ONNX2TF_SAMPLE, sample[:20])
    kwargs = {}
    if calib is not None:
        np.save(work / "calib.npy", calib)
        zero, one = [[[[0.0, 0.0, 0.0]]]], [[[[1.0, 1.0, 1.0]]]]
        kwargs = dict(output_integer_quantized_tflite=True, quant_type="per-channel",
                      custom_input_op_name_np_data_path=[[INPUT_NAME, str(work / "calib.npy"), zero, one]],
                      input_quant_dtype="int8", output_quant_dtype="int8")
    out = work / "tf"
    with _working_directory(work):
        try:
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(out),
                            not_use_onnxsim=True, keep_shape_absolutely_input_names=[INPUT_NAME],
                            copy_onnx_input_output_names_to_tflite=True, verbosity="error", **kwargs)
        except SystemExit as exc:  # onnx2tf calls sys.exit(1) on errors
            raise TfliteExportError(f"onnx2tf exited with status {exc.code}") from exc
    return out


def to_tflite(model: nn.Module, spec: ModelSpec, out_dir: str | Path, precisions=PRECISIONS,
              calib=None, info: TfliteInfo | None = None) -> dict[str, Path]:
    """Write ``model_<precision>.tflite`` for each of ``precisions`` into ``out_dir``.

    One onnx2tf run yields every precision. ``calib`` (N x S x S x 3 training images, 0..255)
    is required for int8 and must come from the training split.
    """
    precisions = tuple(precisions)
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown or not precisions:
        raise ValueError(f"unknown TFLite precision(s) {unknown or precisions}; choose from {PRECISIONS}")
    if "int8" in precisions and calib is None:
        raise TfliteExportError("int8 TFLite needs calibration images from the training split (calib=None)")
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
        tf_dir = _run_onnx2tf(onnx_copy, work, images if "int8" in precisions else None, images)
        for precision in precisions:
            produced = tf_dir / ("model" + ONNX2TF_SUFFIX[precision])
            if not produced.is_file():
                raise TfliteExportError(f"onnx2tf produced no {produced.name} for {precision}")
            target = out_dir / f"model_{precision}.tflite"
            target.write_bytes(add_metadata(produced.read_bytes(), spec, info))
            check_io(target, spec)
            written[precision] = target
    return written


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
