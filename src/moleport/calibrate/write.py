"""Write the site-calibrated bundle: a copy of the input with the new threshold, re-sealed, then re-judged.

The input bundle is never modified: everything is written in a staging folder beside ``--out`` and renamed into
place. spec.json and manifest.json's ``spec`` carry the new threshold, manifest.json a ``site_calibration`` record,
MODEL_CARD.md a site section; calibration.json and calibration.md join manifest.json's sealed ``documents``.
When parity is re-run, parity.json's seal is left pointing at the input's manifest until the harness rewrites it,
so a bundle whose parity run never happened is refused by every consumer (its seal no longer matches).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from moleport.calibrate.report import CARD_HEADING, card_section, render_markdown
from moleport.evaluate.evaluation import json_safe
from moleport.jsonio import read_json_object, write_text_atomic
from moleport.runtimes.bundle import PARITY_SEAL_KEY, Bundle, BundleError, manifest_digest, refresh_document
from moleport.spec import ModelSpec

REPORT_JSON, REPORT_MD, CARD = "calibration.json", "calibration.md", "MODEL_CARD.md"


class WriteError(ValueError):
    """The new bundle cannot be written."""


def stage_copy(bundle: Bundle, out: Path) -> Path:
    """A fresh copy of the input bundle in ``.<out>.calibrating`` beside ``out`` (partial parity reports dropped)."""
    stage = out.parent / f".{out.name}.calibrating"
    shutil.rmtree(stage, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundle.root, stage, ignore=shutil.ignore_patterns("parity-partial.*", ".*.tmp"))
    return stage


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(json_safe(manifest), indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(root / "manifest.json", text, WriteError, "bundle manifest")


def set_threshold(stage: Path, spec: ModelSpec, threshold: float, record: dict[str, Any],
                  parity_inputs: dict[str, str | None]) -> ModelSpec:
    """spec.json and manifest.json's ``spec`` with the new threshold; ``site_calibration`` recorded; spec.json
    re-hashed in ``documents``. ``parity_inputs``: checkpoint / split manifest to record as absolute paths."""
    new = spec.replace(threshold=float(threshold))
    new.save(stage / "spec.json")
    manifest = read_json_object(stage / "manifest.json", WriteError, "bundle manifest")
    if isinstance(manifest.get("spec"), dict):
        manifest["spec"] = new.to_dict()
    manifest["site_calibration"] = record
    for key, value in parity_inputs.items():
        if value is not None:
            manifest[key] = value
    _write_manifest(stage, manifest)
    refresh_document(stage, "spec.json")
    return new


_THRESHOLD_LINE = re.compile(r"(Decision threshold on P\([^)]*\): )\*\*[^*]+\*\*")


def write_card(stage: Path, est: dict[str, Any]) -> None:
    """MODEL_CARD.md: the threshold line updated and a site section (replaced on re-calibration)."""
    path = stage / CARD
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    text = _THRESHOLD_LINE.sub(lambda m: f"{m.group(1)}**{est['threshold_after']:.4f}** (site-calibrated for "
                                         f"{est['site']}, see {CARD_HEADING[3:]}; exported with "
                                         f"{est['threshold_before']:g})", text, count=1)
    head, sep, rest = text.partition(f"\n{CARD_HEADING}\n")
    tail = ""
    if sep:
        _, nxt, after = rest.partition("\n## ")
        tail = f"\n## {after}" if nxt else ""
    text = f"{head.rstrip()}\n\n{CARD_HEADING}\n\n{card_section(est)}{tail}"
    path.write_text(text, encoding="utf-8")
    refresh_document(stage, CARD)


def write_report(root: Path, est: dict[str, Any]) -> str:
    """calibration.json and calibration.md, recorded in manifest.json ``documents``; returns the Markdown."""
    from moleport.evaluate.evaluation import write_json

    md = render_markdown(est)
    write_json(root / REPORT_JSON, est)
    refresh_document(root, REPORT_JSON)  # one at a time: refresh_document checks every other listed document
    write_text_atomic(root / REPORT_MD, md, WriteError, "calibration report")
    refresh_document(root, REPORT_MD)
    return md


def move_seal(root: Path, sealed_before: str) -> bool:
    """Point parity.json's seal at the new manifest.json when it sealed the input's (parity not re-run)."""
    ppath = root / "parity.json"
    if not ppath.is_file():
        return False
    report = read_json_object(ppath, WriteError, "parity report")
    if report.get(PARITY_SEAL_KEY) != sealed_before:
        return False
    report[PARITY_SEAL_KEY] = manifest_digest(root)
    write_text_atomic(ppath, json.dumps(report, indent=1, allow_nan=False) + "\n", WriteError, "parity report")
    return True


def publish(stage: Path, out: Path) -> Path:
    """Rename the finished stage to ``out`` (a previous ``out`` is replaced only after the stage is complete)."""
    old = out.parent / f".{out.name}.replaced"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    stage.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def write_bundle(bundle: Bundle, out: Path, est: dict[str, Any], parity_inputs: dict[str, str | None],
                 keep_parity: bool) -> Path:
    """Stage, rewrite and publish the calibrated bundle; returns ``out``. ``keep_parity``: parity is not re-run,
    so the input's parity.json (same artifacts, byte for byte) is re-sealed to the new manifest."""
    sealed_before = manifest_digest(bundle.root)
    stage = stage_copy(bundle, out)
    try:
        record = {k: est.get(k) for k in ("site", "created", "target_sensitivity", "confidence", "threshold_before",
                                          "threshold_after", "artifact", "min_melanomas")}
        record.update(input_bundle=str(bundle.root), input_manifest_sha256=sealed_before,
                      n=est["counts"], data=dict(est["data"], calibration_files=None), report=REPORT_JSON)
        set_threshold(stage, bundle.spec, est["threshold_after"], record, parity_inputs)
        write_card(stage, est)
        write_report(stage, est)
        if keep_parity:
            move_seal(stage, sealed_before)
    except (BundleError, WriteError, OSError) as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise WriteError(f"{out}: cannot write the calibrated bundle: {exc}") from exc
    return publish(stage, out)
