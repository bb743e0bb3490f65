"""ExecuTorch ``.pte`` programs through ``executorch.runtime`` (the portable runtime + registered backends)."""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from moleport.runtimes.base import Runner, RunnerError, as_float_pixels

RUNTIME = "executorch"
FORMAT = "executorch"


def available() -> bool:
    return importlib.util.find_spec("executorch") is not None and \
        importlib.util.find_spec("executorch.runtime") is not None


class ExecuTorchRunner(Runner):
    runtime = RUNTIME
    implementation = "executorch.runtime"

    def _load(self) -> None:
        from executorch.runtime import Runtime

        from moleport.runtimes.probe import probe_in_child

        probe_in_child(self.artifact.path, RUNTIME)  # a corrupt program aborts the process: try it in a child first
        runtime = Runtime.get()
        self.pool_before = _threadpool_size()  # process-wide: close() puts it back
        self.pool_threads = _set_threadpool(self.threads)
        self.backends = list(runtime.backend_registry.registered_backend_names)
        program = runtime.load_program(self.artifact.path)
        if "forward" not in program.method_names:
            raise RunnerError(f"{self.name}: program has no 'forward' method (methods: {sorted(program.method_names)})")
        self.method = program.load_method("forward")
        meta = self.method.metadata
        if meta.num_inputs() != 1:
            raise RunnerError(f"{self.name}: 'forward' takes {meta.num_inputs()} inputs, expected 1")
        self.input_shape = tuple(int(s) for s in meta.input_tensor_meta(0).sizes())
        if len(self.input_shape) != 4 or 3 not in (self.input_shape[1], self.input_shape[3]):
            raise RunnerError(f"{self.name}: input shape {self.input_shape} is neither NHWC nor NCHW RGB")

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        pixels = as_float_pixels(x)
        if self.input_shape[3] != 3:  # NCHW program
            pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        out = []
        for i in range(len(pixels)):
            result = self.method.execute([torch.from_numpy(pixels[i:i + 1].copy())])
            out.append(np.asarray(result[0].detach().numpy(), dtype=np.float64).reshape(1, -1))
        return self.melanoma_column(np.concatenate(out, axis=0))

    def close(self) -> None:
        """Give the process-wide threadpool back the size it had before :meth:`_load` (when it could be read)."""
        before = getattr(self, "pool_before", None)
        if before and before != getattr(self, "pool_threads", None):
            _set_threadpool(before)
        self.pool_before = None

    def info(self) -> dict[str, Any]:
        return {"threads": self.threads, "threadpool_threads": getattr(self, "pool_threads", None),
                "registered_backends": getattr(self, "backends", None),
                "input_shape": list(getattr(self, "input_shape", ()))}


def _pybindings():
    try:
        from executorch.extension.pybindings import _C
    except ImportError:
        return None
    return _C


def _threadpool_size() -> int | None:
    """The size ExecuTorch's (process-wide) CPU threadpool reports, or None where it cannot be read."""
    _C = _pybindings()
    return int(_C._threadpool_get_thread_count()) if hasattr(_C, "_threadpool_get_thread_count") else None


def _set_threadpool(threads: int) -> int | None:
    """Size ExecuTorch's (process-wide) CPU threadpool used by XNNPACK; returns the size it reports."""
    _C = _pybindings()
    if _C is None:
        return None
    if hasattr(_C, "_unsafe_reset_threadpool"):
        _C._unsafe_reset_threadpool(int(threads))
    return _threadpool_size()


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``executorch`` artifact file with its ModelSpec."""
    return ExecuTorchRunner(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT)]
