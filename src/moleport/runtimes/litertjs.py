"""TFLite artifacts in LiteRT.js (WebAssembly, XNNPACK) inside headless Chromium, via the web demo's own code.

The runner starts ``node web_demo/scripts/run_batch.mjs`` once per artifact: it serves the demo
page (index.html + web_demo/src) with COOP/COEP headers, opens it in Debian's Chromium through
playwright-core and feeds each canonical uint8 224x224x3 image to ``window.moleport.predictTensor``,
i.e. ``src/classifier.js`` exactly as the page uses it. Probabilities come back as JSON lines.

Needs ``node``, ``web_demo/node_modules`` (``npm ci`` in web_demo, or ``make web``) with
``@litertjs/core`` and ``playwright-core``, and ``/usr/bin/chromium`` (``$MOLEPORT_CHROMIUM``).
LiteRT.js has no int8 tensor type; an int8-input artifact is reported as skipped with the
runtime's own message.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from moleport.jsonio import sha256_file
from moleport.runtimes.base import Runner, RunnerError, RunnerSkipped
from moleport.paths import REPO_ROOT

RUNTIME = "litertjs"
FORMAT = "tflite"
WEB_DIR = REPO_ROOT / "web_demo"
SCRIPT = WEB_DIR / "scripts" / "run_batch.mjs"
CHROMIUM = Path(os.environ.get("MOLEPORT_CHROMIUM", "/usr/bin/chromium"))
#: Seconds to wait for the browser and model to come up, and per image.
START_TIMEOUT_S = 180.0
PER_IMAGE_TIMEOUT_S = 30.0


def missing() -> list[str]:
    """What this machine lacks to run the browser runner (empty when available)."""
    out = []
    if shutil.which("node") is None:
        out.append("node (Node.js >= 18)")
    for pkg in ("@litertjs/core", "@litertjs/wasm-utils", "playwright-core"):
        if not (WEB_DIR / "node_modules" / pkg / "package.json").is_file():
            out.append(f"web_demo/node_modules/{pkg} (npm ci in web_demo)")
    if not CHROMIUM.is_file():
        out.append(f"{CHROMIUM} (apt-get install chromium)")
    if not SCRIPT.is_file():
        out.append(str(SCRIPT))
    return out


def available() -> bool:
    return not missing()


def _read_line(proc: subprocess.Popen, timeout: float, what: str) -> dict[str, Any]:
    """One JSON line from the driver, or RunnerError on timeout / exit."""
    box: dict[str, Any] = {}

    def read() -> None:
        box["line"] = proc.stdout.readline()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        proc.kill()
        raise RunnerError(f"LiteRT.js driver timed out after {timeout:.0f} s waiting for {what}")
    line = box.get("line", "")
    if not line:
        err_path = getattr(proc, "stderr_path", None)
        err = Path(err_path).read_text(encoding="utf-8", errors="replace") if err_path else ""
        raise RunnerError(f"LiteRT.js driver exited (code {proc.poll()}) while {what}: {err.strip()[-400:]}")
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"LiteRT.js driver wrote a non-JSON line while {what}: {line[:200]!r}") from exc


class LiteRTJSRunner(Runner):
    """One .tflite in LiteRT.js / Chromium."""

    runtime = RUNTIME
    implementation = "LiteRT.js / Chromium"

    def __init__(self, artifact, spec, threads: int = 1):
        super().__init__(artifact, spec, threads)
        self.proc: subprocess.Popen | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.driver_info: dict[str, Any] = {}
        self.page_ms: list[float] = []

    def _model_dir(self) -> Path:
        """A folder laid out like web_demo/public/model/ holding just this artifact."""
        self.tmp = tempfile.TemporaryDirectory(prefix="moleport-litertjs-")
        d = Path(self.tmp.name)
        name = self.artifact.path.name
        os.symlink(self.artifact.path.resolve(), d / name)
        self.spec.save(d / "spec.json")
        entry = {"path": name, "precision": self.artifact.precision, "bytes": self.artifact.path.stat().st_size,
                 "sha256": self.artifact.sha256, "input": self.artifact.input or None,
                 "output": self.artifact.output or None}
        spec_sha = sha256_file(d / "spec.json")  # the page checks what it loads
        (d / "models.json").write_text(json.dumps({"bundle": "parity", "default": self.artifact.precision,
                                                   "models": [entry], "spec_sha256": spec_sha}) + "\n",
                                       encoding="utf-8")
        return d

    def _load(self) -> None:
        gaps = missing()
        if gaps:
            raise RunnerError(f"{self.name}: LiteRT.js runner unavailable, missing: {', '.join(gaps)}")
        model_dir = self._model_dir()
        cmd = ["node", str(SCRIPT), "--model-dir", str(model_dir), "--precision", self.artifact.precision]
        if self.threads <= 1:
            cmd.append("--no-threads")
        self.stderr_path = model_dir / "driver.stderr.txt"
        with open(self.stderr_path, "w", encoding="utf-8") as err:
            self.proc = subprocess.Popen(cmd, cwd=WEB_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True)
        self.proc.stderr_path = self.stderr_path
        first = _read_line(self.proc, START_TIMEOUT_S, "starting Chromium and loading the model")
        if not first.get("ready"):
            error = str(first.get("error", "unknown error"))
            self.close()
            if "INT8" in error.upper() and "NOT SUPPORTED" in error.upper():
                raise RunnerSkipped(f"{self.name}: {error}")
            raise RunnerError(f"{self.name}: the page could not load the model: {error}")
        self.driver_info = dict(first.get("info", {}))
        self.implementation = f"LiteRT.js {self.driver_info.get('litertjs', '?')} / Chromium {self.driver_info.get('chromium', '?')}"

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self.proc is None or self.proc.poll() is not None:
            raise RunnerError(f"{self.name}: the LiteRT.js driver is not running")
        size = int(self.driver_info.get("size", self.spec.input_size))
        if x.shape[1:] != (size, size, 3):
            raise RunnerError(f"{self.name}: images are {x.shape[1:]}, the page expects {(size, size, 3)}")
        fd, path = tempfile.mkstemp(suffix=".u8", dir=self.tmp.name if self.tmp else None)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
            self.proc.stdin.write(json.dumps({"images": path, "n": int(len(x))}) + "\n")
            self.proc.stdin.flush()
            reply = _read_line(self.proc, START_TIMEOUT_S + PER_IMAGE_TIMEOUT_S * len(x), "running a batch")
        finally:
            os.unlink(path)
        if not reply.get("ok"):
            raise RunnerError(f"{self.name}: {reply.get('error', 'unknown error')}")
        self.page_ms.extend(float(v) for v in reply.get("ms", []))
        return np.asarray(reply["p_melanoma"], dtype=np.float64)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threads": self.threads, **self.driver_info, "accelerator": "wasm (XNNPACK)"}
        if self.page_ms:
            out["page_ms_median"] = float(np.median(self.page_ms))
        return out

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.stdin and not self.proc.stdin.closed:
                    self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
            finally:
                if self.proc.stdout:
                    self.proc.stdout.close()
            self.proc = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        self._loaded = False

    def __del__(self) -> None:  # a harness that forgets close() must not leave Chromium behind
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def runner(artifact, spec, *, threads: int = 1) -> Runner:
    """The runner for one ``tflite`` artifact file with its ModelSpec."""
    return LiteRTJSRunner(artifact, spec, threads)


def runners_for(bundle, *, threads: int = 1) -> list[Runner]:
    return [runner(f, bundle.spec, threads=threads) for f in bundle.of_format(FORMAT)]
