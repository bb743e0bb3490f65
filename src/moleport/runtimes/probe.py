"""Load an artifact in a child process first, so a runtime that aborts (a C++ exception through pybind11 in
ExecuTorch, a segfault in a delegate) kills only the child and the caller gets a clear :class:`RunnerError`."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from moleport.runtimes.base import RunnerError

#: Loads a .pte and runs one zero image; argv[1] is the program's path.
PTE_PROBE = """
import sys
import torch
from executorch.runtime import Runtime
program = Runtime.get().load_program(sys.argv[1])
method = program.load_method("forward")
shape = tuple(int(s) for s in method.metadata.input_tensor_meta(0).sizes())
method.execute([torch.zeros(shape, dtype=torch.float32)])
print("ok")
"""
PROBE_TIMEOUT_S = 180.0


def probe_in_child(path: Path, runtime: str, code: str = PTE_PROBE, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Run ``code`` (``path`` as argv[1]) in a child Python; raise :class:`RunnerError` naming the file when the
    runtime raises, aborts the process or hangs."""
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise RunnerError(f"{path}: the {runtime} runtime did not load it within {timeout:.0f} s") from exc
    if proc.returncode == 0:
        return
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    detail = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    if proc.returncode < 0 or proc.returncode == 134:
        sig = -proc.returncode if proc.returncode < 0 else signal.SIGABRT
        how = f"crashes the {runtime} runtime (signal {signal.Signals(sig).name})"
    else:
        how = f"cannot be loaded by the {runtime} runtime (exit {proc.returncode})"
    raise RunnerError(f"{path}: corrupt or unsupported artifact: it {how}: {detail[:300] or 'no message'}")
