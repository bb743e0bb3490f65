"""Core ML artifacts: ``coremltools.models.MLModel.predict`` on macOS, else the numpy ML-Program interpreter.

Core ML itself only runs on Apple platforms. On Linux the row is produced by
:class:`moleport.runtimes.coreml_mil.CoreMLReferenceRunner` (a reference interpreter of
the ML-Program written independently of the exporter); ``implementation`` in the row says which.
"""
from __future__ import annotations

import importlib.util
import platform
from typing import Any

import numpy as np

from moleport.runtimes.base import Runner, RunnerError

RUNTIME = "coreml"
FORMAT = "coreml"
MIL_MODULE = "moleport.runtimes.coreml_mil"


def on_macos() -> bool:
    return platform.system() == "Darwin"


def available() -> bool:
    if on_macos():
        return importlib.util.find_spec("coremltools") is not None
    return importlib.util.find_spec(MIL_MODULE) is not None


class CoreMLRunner(Runner):
    """MLModel.predict on macOS (the real Core ML framework)."""

    runtime = RUNTIME
    implementation = "coremltools-MLModel"

    def _load(self) -> None:
        import coremltools as ct

        compute = getattr(ct.ComputeUnit, "CPU_ONLY")
        self.model = ct.models.MLModel(str(self.artifact.path), compute_units=compute)
        desc = self.model.get_spec().description
        if len(desc.input) != 1:
            raise RunnerError(f"{self.name}: expected one input, the model has {len(desc.input)}")
        self.input_name = desc.input[0].name
        self.is_image = desc.input[0].type.WhichOneof("Type") == "imageType"
        self.output_name = desc.predictedProbabilitiesName or desc.output[0].name

    def _predict(self, x: np.ndarray) -> np.ndarray:
        from PIL import Image

        out = []
        for img in x:
            feed = Image.fromarray(np.ascontiguousarray(img), "RGB") if self.is_image else \
                img.transpose(2, 0, 1)[None].astype(np.float32)
            value = self.model.predict({self.input_name: feed})[self.output_name]
            if isinstance(value, dict):  # classifier: {label: probability}
                value = [value[label] for label in self.spec.labels]
            out.append(np.asarray(value, dtype=np.float64).reshape(1, -1))
        return self.melanoma_column(np.concatenate(out, axis=0))

    def info(self) -> dict[str, Any]:
        return {"threads": self.threads, "compute_units": "CPU_ONLY", "platform": platform.platform()}


class CoreMLReferenceInterpreterRunner(Runner):
    """The numpy ML-Program reference interpreter (Linux, Windows)."""

    runtime = RUNTIME
    implementation = "numpy-mlprogram-reference"

    def _load(self) -> None:
        from moleport.runtimes.coreml_mil import CoreMLReferenceRunner

        self.reference = CoreMLReferenceRunner(self.artifact.path, blas_threads=self.threads)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.reference.predict(np.ascontiguousarray(x)), dtype=np.float64).reshape(-1)

    def info(self) -> dict[str, Any]:
        ref = getattr(self, "reference", None)
        return {"threads": self.threads, "platform": platform.platform(),
                "compute_precision": getattr(ref, "precision", None),
                "note": "Core ML framework unavailable off Apple platforms; ML-Program interpreted in numpy"}


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``coreml`` artifact with its ModelSpec: Core ML itself on macOS, else the interpreter."""
    cls = CoreMLRunner if on_macos() else CoreMLReferenceInterpreterRunner
    return cls(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT)]
