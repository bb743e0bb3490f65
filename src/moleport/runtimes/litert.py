"""TFLite artifacts through LiteRT's ``Interpreter`` with the XNNPACK delegate, as Android runs them.

LiteRT applies XNNPACK by default (op resolver ``AUTO``); the row records whether a
``DELEGATE`` node was created, i.e. whether XNNPACK actually took the graph. Integer
(int8/uint8) input and output tensors are quantised / dequantised with the scale and
zero point read from the interpreter itself, never from the exporter's notes.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from moleport.runtimes.base import Runner, RunnerError, as_float_pixels

RUNTIME = "litert"
FORMAT = "tflite"


def available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float values -> the integer tensor type of ``detail`` (scale/zero point from the interpreter)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(x, dtype=dtype)
    scale, zero = detail["quantization"]
    if not scale:
        raise RunnerError(f"input tensor {detail['name']!r} is {dtype} without quantisation parameters")
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.asarray(q, dtype=np.float64)
    scale, zero = detail["quantization"]
    if not scale:
        raise RunnerError(f"output tensor {detail['name']!r} is {dtype} without quantisation parameters")
    return (np.asarray(q, dtype=np.float64) - zero) * scale


class LiteRTRunner(Runner):
    runtime = RUNTIME
    implementation = "ai-edge-litert-interpreter"

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.interpreter = Interpreter(model_path=str(self.artifact.path), num_threads=self.threads,
                                       experimental_op_resolver_type=OpResolverType.AUTO)
        self.interpreter.allocate_tensors()
        ins, outs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise RunnerError(f"{self.name}: expected one input and one output, found {len(ins)} and {len(outs)}")
        self.input, self.output = ins[0], outs[0]
        shape = tuple(int(s) for s in self.input["shape"])
        if len(shape) != 4 or shape[3] != 3:
            raise RunnerError(f"{self.name}: input shape {shape} is not NHWC with 3 channels")
        self.ops = [o["op_name"] for o in self.interpreter._get_ops_details()]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        pixels = as_float_pixels(x)
        out = []
        for i in range(len(pixels)):
            self.interpreter.set_tensor(self.input["index"], quantize(pixels[i:i + 1], self.input))
            self.interpreter.invoke()
            out.append(dequantize(self.interpreter.get_tensor(self.output["index"]), self.output))
        return self.melanoma_column(np.concatenate(out, axis=0))

    def info(self) -> dict[str, Any]:
        import ai_edge_litert

        ops = getattr(self, "ops", [])
        n_delegate = sum(op == "DELEGATE" for op in ops)
        return {"threads": self.threads, "op_resolver": "AUTO", "delegate": "XNNPACK" if n_delegate else None,
                "delegate_nodes": n_delegate, "builtin_ops": sorted(set(ops) - {"DELEGATE"}),
                "input_dtype": np.dtype(self.input["dtype"]).name if hasattr(self, "input") else None,
                "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown")}


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``tflite`` artifact file with its ModelSpec."""
    return LiteRTRunner(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT)]
