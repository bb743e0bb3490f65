"""A real client: MediaPipe Tasks ``ImageClassifier`` on the .tflite files with their metadata.

It proves what the interpreter rows cannot: that the TFLite metadata (labels, input
normalisation, output layout) lets an app that trusts it get the same P(melanoma).
Input is the canonical 224x224 RGB uint8 image as an ``mp.Image`` (SRGB); the score of
the category named ``melanoma`` is compared (max_results=2, score_threshold=0).
MediaPipe accepts uint8 or float32 input tensors only, so an int8-input model is skipped
with a note.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from moleport.runtimes.base import Runner, RunnerError, RunnerSkipped

RUNTIME = "mediapipe"
FORMAT = "tflite"
PRECISIONS = ("fp32", "int8")  # MediaPipe rows are judged by the gates of these tflite precisions


def available() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


def _input_dtype(path) -> str | None:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return np.dtype(Interpreter(model_path=str(path)).get_input_details()[0]["dtype"]).name
    except Exception:  # noqa: BLE001  (a broken file is reported when the runner loads it)
        return None


class MediaPipeRunner(Runner):
    runtime = RUNTIME
    implementation = "mediapipe-tasks-ImageClassifier"

    def _load(self) -> None:
        dtype = _input_dtype(self.artifact.path)
        if dtype not in (None, "uint8", "float32"):
            raise RunnerSkipped(f"{self.name}: input tensor is {dtype}; MediaPipe ImageClassifier accepts "
                                "uint8/float32 inputs only")
        import mediapipe as mp

        opts = mp.tasks.vision.ImageClassifierOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(self.artifact.path)),
            running_mode=mp.tasks.vision.RunningMode.IMAGE, max_results=len(self.spec.labels), score_threshold=0.0)
        self.classifier = mp.tasks.vision.ImageClassifier.create_from_options(opts)
        self.mp = mp

    def _score(self, result) -> float:
        cats = result.classifications[0].categories if result.classifications else []
        names = {c.category_name: c for c in cats}
        if "melanoma" not in names:
            raise RunnerError(f"{self.name}: metadata labels {sorted(names)} lack 'melanoma' "
                              "(labels file missing from the TFLite metadata?)")
        cat = names["melanoma"]
        if cat.index != self.spec.melanoma_index:
            raise RunnerError(f"{self.name}: metadata puts 'melanoma' at output index {cat.index}, "
                              f"the spec at {self.spec.melanoma_index}")
        return float(cat.score)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        mp = self.mp
        out = np.empty(len(x), dtype=np.float64)
        for i, img in enumerate(x):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img))
            out[i] = self._score(self.classifier.classify(image))
        return out

    def close(self) -> None:
        classifier = getattr(self, "classifier", None)
        if classifier is not None:
            classifier.close()
            self.classifier = None
            self._loaded = False

    def info(self) -> dict[str, Any]:
        import mediapipe as mp

        return {"threads": "mediapipe default", "mediapipe": mp.__version__, "max_results": len(self.spec.labels),
                "score_threshold": 0.0, "image_format": "SRGB uint8 224x224"}


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``tflite`` artifact file with its ModelSpec."""
    return MediaPipeRunner(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT) if f.precision in PRECISIONS]
