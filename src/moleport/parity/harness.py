"""Run every artifact of an export bundle in every available runtime and judge it against PyTorch.

``run_parity`` decodes the split once (the identical uint8 images go to every runner), computes
the reference P(melanoma) from the bundle's source checkpoint (PyTorch eager fp32), runs each
artifact x runtime, compares, applies :class:`~moleport.parity.gates.Gates` and writes
``parity.json``, ``parity.md``, ``parity.html`` (and ``parity_predictions.npz``) into the bundle.
A file that is missing, altered, fails to load or to run becomes a violation in the report.
"""
from __future__ import annotations

import datetime as _dt
import platform
import sys
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from moleport.data.arrays import DEFAULT_CACHE, SplitArrays, load_split
from moleport.data.manifest import ManifestError, load_manifest
from moleport.jsonio import sha256_file
from moleport.runtimes.bundle import (PARITY_SEAL_KEY, ArtifactFile, Bundle, BundleError, load_bundle, manifest_digest,
                                    verify_documents, verify_file, with_overrides)
from moleport.parity.compare import compare, summary
from moleport.parity.gates import Gates, flip_split, judge
from moleport.parity.report import Predictions, load_predictions, save_predictions, write_reports
from moleport.parity.rows import UNSET, Row
from moleport.runtimes import Runner, RunnerError, RunnerSkipped, discover
from moleport.runtimes.torch_ref import TorchReferenceRunner
from moleport.parity.ship import REQUIRED_PRECISIONS, decide

#: Reports of a run that judged every available runtime on the whole split: the verdicts the apps obey.
FULL_STEM = "parity"
#: Reports of a partial run (--limit / --runtimes): written beside, never over, the full verdicts.
PARTIAL_STEM = "parity-partial"


class ParityError(RuntimeError):
    """Parity cannot even start (no bundle, no split manifest, no images)."""


def _split_data(bundle: Bundle, split: str, limit: int | None, cache_dir) -> tuple[Path, Any, SplitArrays, list[str]]:
    path = bundle.split_manifest
    if path is None:
        raise ParityError(f"{bundle.root}: manifest.json names no split_manifest; pass one explicitly")
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        raise ParityError(str(exc)) from exc
    problems = []
    recorded = bundle.manifest.get("split_manifest_sha256")
    if recorded and recorded != manifest.sha256:
        problems.append(f"split manifest {path} (sha256 {manifest.sha256[:16]}…) is not the one the bundle was "
                        f"exported with ({str(recorded)[:16]}…)")
    data = load_split(manifest, split, size=bundle.spec.input_size, cache_dir=cache_dir, limit=limit)
    if len(data.y) == 0:
        raise ParityError(f"{path}: split {split!r} holds no images")
    return path, manifest, data, problems


def _reference(bundle: Bundle, data: SplitArrays, threads: int, latency_runs: int) -> tuple[Row, np.ndarray | None]:
    """The reference row and its probabilities (None when the reference itself fails)."""
    ckpt = bundle.checkpoint
    row = Row(artifact=ckpt.name if ckpt else "(no checkpoint)", format="pytorch", precision="fp32", runtime="torch",
              implementation=TorchReferenceRunner.implementation, is_reference=True,
              checkpoint=str(ckpt) if ckpt else None)
    if ckpt is None:
        return row.replace(error="manifest.json names no source 'checkpoint'; pass the checkpoint explicitly "
                                 "(run_parity(checkpoint=...) / --ckpt)"), None
    runner = TorchReferenceRunner(ckpt, bundle.spec, threads)
    try:
        p = runner.predict(data.x)
        latency = runner.latency_ms(data.x[0], runs=latency_runs) if latency_runs else None
    except (RunnerError, ValueError) as exc:
        return row.replace(error=f"reference failed: {exc}"), None
    row = row.replace(latency_ms=latency, status="ok", info=runner.info(), bytes=ckpt.stat().st_size,
                      sha256=sha256_file(ckpt))
    recorded = bundle.checkpoint_sha256
    if recorded and recorded != row.sha256:
        row = row.replace(status="error", error=f"checkpoint {ckpt} (sha256 {row.sha256[:16]}…) is not the one the "
                                                f"bundle was exported from ({str(recorded)[:16]}…)")
    return row, p


def _verified(files: tuple[ArtifactFile, ...]) -> dict[str, str | None]:
    """rel path -> None when the file matches manifest.json, else the error message."""
    out: dict[str, str | None] = {}
    for f in files:
        try:
            verify_file(f)
            out[f.rel] = None
        except BundleError as exc:
            out[f.rel] = str(exc)
    return out


def _runner_row(runner: Runner, **facts: Any) -> Row:
    """A row for ``runner``'s artifact (the precision is the runner's: MediaPipe's is the .tflite it loads)."""
    art = runner.artifact
    return Row(artifact=art.rel, format=art.format, precision=runner.precision, runtime=runner.runtime,
               implementation=runner.implementation, bytes=art.bytes, sha256=art.sha256, **facts)


def _run_one(runner: Runner, data: SplitArrays, latency_runs: int) -> tuple[Row, np.ndarray | None]:
    latency = UNSET
    try:
        p = runner.predict(data.x)
        latency = runner.latency_ms(data.x[0], runs=latency_runs) if latency_runs else None
        info = runner.info()
    except RunnerSkipped:
        raise
    except (RunnerError, ValueError) as exc:
        return _runner_row(runner, latency_ms=latency, error=str(exc), info=_safe_info(runner)), None
    finally:
        _close(runner)
    return _runner_row(runner, latency_ms=latency, info=info, status="ok"), p


def _safe_info(runner: Runner) -> dict[str, Any]:
    try:
        return runner.info()
    except Exception:  # noqa: BLE001  (info of a runner that failed to load may be partial)
        return {"threads": runner.threads}


def _close(runner: Runner) -> None:
    close = getattr(runner, "close", None)
    if callable(close):
        close()


def finish_row(row: Row | Mapping[str, Any], p: np.ndarray | None, y: np.ndarray, files, p_ref: np.ndarray,
               ref_summary: dict[str, Any], gates: Gates, threshold: float) -> dict[str, Any]:
    """Add the comparison to a row, judge it with the gates of its precision; return it as parity.json lists it."""
    row = row if isinstance(row, Row) else Row.from_dict(row)
    if row.ok and p is not None:
        row = row.replace(results={**row.results, **compare(y, p_ref, p, files, threshold, ref_summary)})
    row = row.replace(n=int(len(y)), gate=gates.describe(row.precision, len(y)))
    violations = judge(row.to_dict(), gates, threshold)
    reduced = gates.reduced(row.precision)
    if reduced is not None and row.ok and "flipped" in row.results:
        inside, outside = flip_split(row.results, threshold, reduced.band)
        row = row.replace(band={"band": reduced.band, "inside": inside, "outside": outside,
                                "budget": reduced.band_budget(len(y))})
    return row.replace(violations=tuple(violations), passed=not violations).to_dict()


def _environment() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine()}


def _payload(bundle: Bundle, split: str, split_path: Path, manifest_sha: str, gates: Gates, reference: Row,
             rows: list[dict], problems: list[str], notes: list[str], n: int) -> dict[str, Any]:
    ref_row = reference.to_dict()
    payload = {
        "passed": False, "violations": [], "problems": list(problems), "bundle": str(bundle.root),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "split": split, "n": int(n), "split_manifest": str(split_path), "split_manifest_sha256": manifest_sha,
        "threshold": bundle.spec.threshold, "labels": list(bundle.spec.labels), "gates": gates.to_dict(),
        "reference": {k: v for k, v in ref_row.items() if k not in ("violations",)},
        "rows": [ref_row, *rows], "notes": notes, "environment": _environment(),
        PARITY_SEAL_KEY: manifest_digest(bundle.root),
    }
    return decide_payload(payload, bundle)


def decide_payload(payload: dict[str, Any], bundle: Bundle) -> dict[str, Any]:
    """The verdicts (:func:`tally`) and the one ship decision (``payload["ship"]``) from the rows."""
    tally(payload)
    payload["ship"] = decide(bundle.files, payload["artifacts"])
    return payload


def tally(payload: dict[str, Any]) -> dict[str, Any]:
    """(Re)compute ``violations``, ``passed`` and the per-artifact verdicts from the bundle problems and every row.

    ``artifacts`` maps each judged artifact path to ``{"passed", "runtimes", "precision", "format"}``: an artifact
    passes only when every runtime that ran it passed. Packagers (android_demo/scripts/copy_assets.sh,
    web_demo/scripts/build.mjs, the pipeline summary) read this map and ship only what passed.
    """
    violations = list(payload.get("problems", []))
    verdicts: dict[str, dict[str, Any]] = {}
    for row in payload["rows"]:
        violations.extend(row.get("violations", []))
        if row.get("is_reference"):
            continue
        v = verdicts.setdefault(row["artifact"], {"passed": True, "runtimes": {}, "precision": row.get("precision"),
                                                  "format": row.get("format")})
        v["runtimes"][row["runtime"]] = bool(row.get("passed"))
        v["passed"] = v["passed"] and bool(row.get("passed"))
    payload["violations"] = violations
    payload["passed"] = not violations
    payload["artifacts"] = verdicts
    rejected = sorted(a for a, v in verdicts.items() if not v["passed"] and v["precision"] not in REQUIRED_PRECISIONS)
    required = list(payload.get("problems", []))  # bundle problems and every row but a rejected artifact's
    for row in payload["rows"]:
        if row.get("is_reference") or row["artifact"] not in rejected:
            required.extend(row.get("violations", []))
    payload["rejected"] = rejected  # optional (w8/int8) artifacts that failed: listed, never shipped, not fatal
    payload["required_passed"] = not required
    return payload


def _is_partial(bundle: Bundle, found, runtimes, threads: int, extra_modules, limit, n: int, n_split: int) -> bool:
    """A run judges less than the full verdict when it saw part of the split, or when ``runtimes`` leaves out an
    artifact x runtime pair that a run over every available runtime would judge (``found``: this run's runners)."""
    if limit is not None and n < n_split:
        return True
    if runtimes is None:
        return False
    pairs = lambda d: {(r.artifact.rel if r.artifact else None, r.runtime) for r in d.runners}  # noqa: E731
    return bool(pairs(discover(bundle, None, threads, extra_modules)) - pairs(found))


def run_parity(bundle_dir: str | Path, split_manifest: str | Path | None = None, split: str = "test",
               limit: int | None = None, gates: Gates | None = None, runtimes: list[str] | None = None, *,
               threads: int = 1, latency_runs: int = 10, extra_modules: tuple[str, ...] = (),
               cache_dir: str | Path | None = DEFAULT_CACHE, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Judge every artifact x runtime of ``bundle_dir``; write the reports there and return parity.json's dict.

    ``split_manifest`` / ``checkpoint`` default to manifest.json's ``split_manifest`` / ``checkpoint``.
    """
    gates = gates or Gates()
    bundle = with_overrides(load_bundle(bundle_dir), checkpoint, split_manifest)
    split_path, manifest, data, problems = _split_data(bundle, split, limit, cache_dir)
    try:  # spec.json / labels.txt / MODEL_CARD.md exactly as exported: the apps read them
        verify_documents(bundle)
    except BundleError as exc:
        problems.append(str(exc))
    found = discover(bundle, runtimes, threads, extra_modules)
    partial = _is_partial(bundle, found, runtimes, threads, extra_modules, limit, len(data.y),
                          len(manifest.split(split)))
    stem = PARTIAL_STEM if partial else FULL_STEM
    threshold = bundle.spec.threshold
    ref_row, p_ref = _reference(bundle, data, threads, latency_runs)
    problems += found.problems
    notes = list(found.skipped)
    rows: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    if p_ref is None:
        ref_row = ref_row.replace(n=len(data.y), gate="reference", violations=(ref_row.error,), passed=False)
        payload = _payload(bundle, split, split_path, manifest.sha256, gates, ref_row, rows, problems,
                           notes + ["no artifact was judged: the reference did not run"], len(data.y))
        payload["partial"] = partial
        write_reports(bundle.root, payload, None, stem=stem)
        return payload
    ref_summary = summary(data.y, p_ref, threshold)
    ref_row = ref_row.replace(results={"metrics": ref_summary["metrics"], "evaluation": ref_summary["evaluation"],
                                       "confusion_matrix": ref_summary["evaluation"]["confusion_matrix"]},
                              n=len(data.y), gate="reference", violations=(ref_row.error,) if ref_row.error else (),
                              passed=ref_row.ok)
    bad = _verified(bundle.files)
    for runner in found.runners:
        if runner.artifact is not None and bad.get(runner.artifact.rel):
            row, p = _runner_row(runner, error=bad[runner.artifact.rel]), None
        else:
            try:
                row, p = _run_one(runner, data, latency_runs)
            except RunnerSkipped as exc:
                notes.append(str(exc))
                continue
        rows.append(finish_row(row, p, data.y, data.files, p_ref, ref_summary, gates, threshold))
        if p is not None:
            predictions[row.key] = p
    payload = _payload(bundle, split, split_path, manifest.sha256, gates, ref_row, rows, problems, notes, len(data.y))
    payload["partial"] = partial
    if partial:
        payload["notes"].append(f"partial run (limit {limit}, runtimes {runtimes}): written to {PARTIAL_STEM}.json; "
                                f"the verdicts the apps obey stay in {FULL_STEM}.json")
    preds = Predictions(files=tuple(data.files), y=data.y, reference=p_ref, rows=predictions)
    if not partial:
        save_predictions(bundle.root, preds)
    write_reports(bundle.root, payload, preds, stem=stem)
    return payload


def row_key(row: Row | Mapping[str, Any]) -> str:
    """``artifact@runtime/implementation`` of a row, or of a row read from parity.json."""
    if isinstance(row, Row):
        return row.key
    return f"{row['artifact']}@{row['runtime']}/{row['implementation']}"


@dataclass(frozen=True)
class ExternalResult:
    """Predictions of a runner that lives outside this process (a browser, a phone, ...).

    ``p_melanoma`` is aligned with the images of the last ``run_parity`` (their order is in
    ``parity_predictions.npz``) or maps each image file to its P(melanoma). Leave it None and set
    ``error`` when the artifact failed to load or run there.
    """

    artifact: str  # path of the artifact as listed in manifest.json (e.g. "model_fp32.tflite")
    runtime: str  # e.g. "litertjs"
    implementation: str  # e.g. "LiteRT.js / Chromium 131 (wasm, XNNPACK)"
    p_melanoma: Sequence[float] | Mapping[str, float] | None = None
    latency_ms: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _external_p(result: ExternalResult, files: tuple[str, ...]) -> np.ndarray:
    got = result.p_melanoma
    if isinstance(got, Mapping):
        missing = [f for f in files if f not in got]
        if missing:
            raise ValueError(f"{result.runtime}: no prediction for {len(missing)} image(s), e.g. {missing[0]}")
        return np.array([float(got[f]) for f in files], dtype=np.float64)
    p = np.asarray(got, dtype=np.float64).reshape(-1)
    if len(p) != len(files):
        raise ValueError(f"{result.runtime}: {len(p)} predictions for {len(files)} images")
    return p


def _external_row(bundle: Bundle, result: ExternalResult, files: tuple[str, ...]) -> tuple[Row, np.ndarray | None]:
    art = next((f for f in bundle.files if f.rel == result.artifact), None)
    if art is None:
        raise ParityError(f"external row names {result.artifact!r}, which manifest.json does not list")
    row = Row(artifact=art.rel, format=art.format, precision=art.precision, runtime=result.runtime,
              implementation=result.implementation, bytes=art.bytes, sha256=art.sha256,
              latency_ms=result.latency_ms, info=dict(result.info), external=True)
    if result.error or result.p_melanoma is None:
        return row.replace(error=result.error or "no predictions"), None
    try:
        p = _external_p(result, files)
    except ValueError as exc:
        return row.replace(error=str(exc)), None
    if not np.all(np.isfinite(p)):
        return row.replace(error=f"{result.runtime}: non-finite probabilities"), None
    return row.replace(status="ok"), p


def add_external_rows(bundle_dir: str | Path, results: Sequence[ExternalResult],
                      gates: Gates | None = None) -> dict[str, Any]:
    """Judge externally produced predictions against the last run's reference; rewrite the reports.

    A row with the same artifact, runtime and implementation as an existing one replaces it.
    """
    bundle = load_bundle(bundle_dir)
    jpath = bundle.root / "parity.json"
    if not jpath.is_file():
        raise ParityError(f"{bundle.root}: run run_parity first (parity.json not found)")
    payload = json.loads(jpath.read_text(encoding="utf-8"))
    preds = load_predictions(bundle.root)
    gates = gates or Gates.from_mapping(payload.get("gates"))
    threshold = float(payload["threshold"])
    ref_summary = summary(preds.y, preds.reference, threshold)
    rows = {row_key(r): r for r in payload["rows"]}
    for result in results:
        row, p = _external_row(bundle, result, preds.files)
        rows[row.key] = finish_row(row, p, preds.y, preds.files, preds.reference, ref_summary, gates, threshold)
        if p is not None:
            preds.rows[row.key] = p
    payload["rows"], payload["gates"] = list(rows.values()), gates.to_dict()
    decide_payload(payload, bundle)
    save_predictions(bundle.root, preds)
    write_reports(bundle.root, payload, preds)
    return payload
