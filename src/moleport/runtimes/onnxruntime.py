"""ONNX artifacts through ONNX Runtime's CPU execution provider."""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from moleport.runtimes.base import Runner, RunnerError, as_float_pixels

RUNTIME = "onnxruntime"
FORMAT = "onnx"


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRuntimeRunner(Runner):
    runtime = RUNTIME
    implementation = "onnxruntime-cpu"

    def _load(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.artifact.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise RunnerError(f"{self.name}: expected one input, the graph has {len(inputs)}")
        self.input = inputs[0]
        self.layout = _layout(self.input.shape, self.artifact.input)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        pixels = as_float_pixels(x)
        if self.layout == "NCHW":
            pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        batch = self.input.shape[0]
        if isinstance(batch, int) and batch != len(pixels):
            outs = [self.session.run(None, {self.input.name: pixels[i:i + 1]})[0] for i in range(len(pixels))]
            probs = np.concatenate(outs, axis=0)
        else:
            probs = self.session.run(None, {self.input.name: pixels})[0]
        return self.melanoma_column(probs)

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"threads": self.threads, "provider": "CPUExecutionProvider", "onnxruntime": ort.__version__,
                "layout": getattr(self, "layout", None)}


def _layout(shape: list, declared: dict) -> str:
    """NHWC or NCHW from the graph's input shape (falls back to manifest.json's ``input.layout``)."""
    if len(shape) == 4 and shape[3] == 3:
        return "NHWC"
    if len(shape) == 4 and shape[1] == 3:
        return "NCHW"
    layout = str(declared.get("layout", "NHWC")).upper()
    if layout not in ("NHWC", "NCHW"):
        raise RunnerError(f"cannot tell the input layout from shape {shape} or manifest input {declared}")
    return layout


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``onnx`` artifact file with its ModelSpec."""
    return OnnxRuntimeRunner(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT)]
