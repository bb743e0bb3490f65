"""The one small interface every runtime runner implements.

A runner wraps ONE artifact in ONE runtime. ``predict`` takes the canonical uint8
NHWC RGB images (the decoded test split) and returns P(melanoma) per image as float64.
Runners load lazily; any failure to load or run raises :class:`RunnerError` naming the
artifact and the runtime, which the harness turns into a violation (never a crash).
"""
from __future__ import annotations

import statistics
import time
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from moleport.runtimes.bundle import ArtifactFile
from moleport.spec import ModelSpec

#: Runtimes a row may name (external runners add their own, e.g. "litertjs").
RUNTIMES = ("torch", "onnxruntime", "litert", "executorch", "coreml", "mediapipe")


class RunnerError(RuntimeError):
    """An artifact could not be loaded or run in a runtime; the message says which and why."""


class RunnerSkipped(RunnerError):
    """This runner does not apply to this artifact (reported as a note, not a violation)."""


class Runner(ABC):
    """One artifact in one runtime."""

    runtime: str = ""
    implementation: str = ""

    def __init__(self, artifact: ArtifactFile | None, spec: ModelSpec, threads: int = 1):
        self.artifact = artifact
        self.spec = spec
        self.threads = int(threads)
        self._loaded = False

    # --- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        target = self.artifact.rel if self.artifact else "checkpoint"
        return f"{target}@{self.runtime}"

    @property
    def precision(self) -> str:
        return self.artifact.precision if self.artifact else "fp32"

    @property
    def format(self) -> str:
        return self.artifact.format if self.artifact else "pytorch"

    def info(self) -> dict[str, Any]:
        """Runtime details recorded in the row (delegate, threads, versions, ...)."""
        return {"threads": self.threads}

    # --- work -------------------------------------------------------------------------------
    def load(self) -> None:
        if not self._loaded:
            try:
                self._load()
            except RunnerError:
                raise
            except Exception as exc:  # noqa: BLE001  (every runtime raises its own types)
                raise RunnerError(f"{self.name}: cannot load: {type(exc).__name__}: {_first_line(exc)}") from exc
            self._loaded = True

    def predict(self, x_uint8_nhwc: np.ndarray) -> np.ndarray:
        """P(melanoma) for each image of a uint8 NHWC batch."""
        x = np.asarray(x_uint8_nhwc)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise ValueError(f"{self.name}: expected uint8 NHWC RGB images, got {x.shape} {x.dtype}")
        self.load()
        try:
            p = np.asarray(self._predict(x), dtype=np.float64).reshape(-1)
        except RunnerError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise RunnerError(f"{self.name}: inference failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        if p.shape != (len(x),):
            raise RunnerError(f"{self.name}: returned {p.shape} scores for {len(x)} images")
        if not np.all(np.isfinite(p)):
            raise RunnerError(f"{self.name}: returned non-finite probabilities")
        return p

    def latency_ms(self, image_uint8_hwc: np.ndarray, runs: int = 10, warmup: int = 2) -> float:
        """Median wall time (ms) of one single-image prediction."""
        one = np.asarray(image_uint8_hwc)[None]
        for _ in range(warmup):
            self.predict(one)
        times = []
        for _ in range(max(1, runs)):
            t0 = time.perf_counter()
            self.predict(one)
            times.append((time.perf_counter() - t0) * 1000.0)
        return float(statistics.median(times))

    def close(self) -> None:
        """Release runtime resources (sessions, subprocesses); the harness calls it after the row."""

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, x: np.ndarray) -> np.ndarray: ...

    # --- helpers shared by file runners --------------------------------------------------------
    def melanoma_column(self, probs: np.ndarray) -> np.ndarray:
        """Pick P(melanoma) out of an N x 2 ``[P(labels[0]), P(labels[1])]`` output."""
        probs = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
        if probs.shape[1] != len(self.spec.labels):
            raise RunnerError(f"{self.name}: output has {probs.shape[1]} values per image, "
                              f"expected {len(self.spec.labels)} ({list(self.spec.labels)})")
        return probs[:, self.spec.melanoma_index]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else "(no message)"


def as_float_pixels(x_uint8: np.ndarray) -> np.ndarray:
    """The artifact contract's input: float32 RGB values 0..255."""
    return np.ascontiguousarray(x_uint8, dtype=np.float32)
