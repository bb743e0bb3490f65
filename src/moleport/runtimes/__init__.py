"""The runtimes layer: one runner per runtime, each taking ONE artifact file and its ModelSpec.

Parity, evaluate, predict and golden all run artifacts through this layer; it imports neither
:mod:`moleport.export` nor :mod:`moleport.train` (tests/test_layering.py), so the harness never
reuses the code it judges. :mod:`moleport.runtimes.bundle` reads and verifies an export bundle.

Each runner module exposes

- ``RUNTIME``: the runtime name written in report rows (``onnxruntime``, ``litert``, ...);
- ``FORMAT``: the manifest format it runs (``onnx``, ``tflite``, ``executorch``, ``coreml``);
- ``available() -> bool``: whether this machine can run it (package importable, browser found, ...);
- ``runner(artifact, spec, *, threads=1) -> Runner``: the runner for one artifact file;
- ``runners_for(bundle, *, threads=1) -> list[Runner]``: one runner per artifact it can judge.

The harness asks every module in :data:`RUNNER_MODULES`, then any module named in
``$MOLEPORT_PARITY_RUNNERS`` (comma-separated) or passed as ``extra_modules``. A listed module
that is not installed (e.g. the web developer's ``litertjs``) is skipped silently.
"""
from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from types import ModuleType

from moleport.runtimes.bundle import Bundle
from moleport.runtimes.base import RUNTIMES, Runner, RunnerError, RunnerSkipped

#: Built-in runner modules (the reference ``torch_ref`` is run separately by the harness).
RUNNER_MODULES = (
    "moleport.runtimes.onnxruntime",
    "moleport.runtimes.litert",
    "moleport.runtimes.executorch",
    "moleport.runtimes.coreml",
    "moleport.runtimes.mediapipe",
    "moleport.runtimes.litertjs",  # owned by the web developer; optional
)
PLUGIN_ENV = "MOLEPORT_PARITY_RUNNERS"


@dataclass
class Discovery:
    runners: list[Runner] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # informational notes
    problems: list[str] = field(default_factory=list)  # become violations


def runner_module_names(extra_modules: tuple[str, ...] | list[str] = ()) -> list[str]:
    env = [m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(",") if m.strip()]
    names: list[str] = []
    for name in (*RUNNER_MODULES, *env, *extra_modules):
        if name not in names:
            names.append(name)
    return names


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None  # the plugin module itself is absent
        raise


def _runners_of(mod: ModuleType, bundle: Bundle, threads: int) -> list[Runner]:
    fn = mod.runners_for
    params = inspect.signature(fn).parameters
    if "threads" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return list(fn(bundle, threads=threads))
    return list(fn(bundle))


def discover(bundle: Bundle, runtimes: list[str] | tuple[str, ...] | None = None, threads: int = 1,
             extra_modules: tuple[str, ...] | list[str] = ()) -> Discovery:
    """Runners for every artifact of ``bundle`` in the wanted runtimes (all available ones when None)."""
    out = Discovery()
    wanted = set(runtimes) if runtimes else None
    seen: set[str] = set()
    for name in runner_module_names(extra_modules):
        mod = _import(name)
        if mod is None:
            continue
        runtime = getattr(mod, "RUNTIME", name.rsplit(".", 1)[-1])
        seen.add(runtime)
        if wanted is not None and runtime not in wanted:
            continue
        try:
            ok = bool(mod.available())
        except Exception as exc:  # noqa: BLE001
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "not available on this machine"
        if not ok:
            msg = f"runtime {runtime}: {why}"
            (out.problems if wanted is not None else out.skipped).append(msg)
            continue
        out.runners.extend(_runners_of(mod, bundle, threads))
    for missing in sorted((wanted or set()) - seen - {"torch"}):
        out.problems.append(f"runtime {missing}: requested but no runner module provides it")
    return out


__all__ = ["Discovery", "PLUGIN_ENV", "RUNNER_MODULES", "RUNTIMES", "Runner", "RunnerError", "RunnerSkipped", "discover",
           "runner_module_names"]
