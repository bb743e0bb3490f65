"""CI views of a parity payload (the dict ``parity.json`` holds): JUnit XML and a step-summary Markdown.

``write_junit_xml`` gives one ``<testcase>`` per judged artifact x runtime row (the PyTorch reference
row is not a test, unless it failed to run), a failed row carrying its violated gates, plus one testcase
for the bundle-level ``problems``; GitHub (e.g. dorny/test-reporter, mikepenz/action-junit-report) and
GitLab (``artifacts:reports:junit``) read it. ``write_ci_summary`` writes a short Markdown verdict fit
for ``$GITHUB_STEP_SUMMARY``. Both are pure functions of the payload, standard library only.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

SUITE_NAME = "moleport parity"
MAX_VIOLATIONS_LISTED = 50

# Characters XML 1.0 forbids even escaped (runtime errors may carry ANSI escapes or NULs).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_FORMAT_BY_SUFFIX = {".onnx": "onnx", ".tflite": "tflite", ".mlpackage": "coreml", ".mlmodel": "coreml",
                     ".pte": "executorch", ".pt": "pytorch", ".pth": "pytorch"}


def _x(value: Any) -> str:
    return _XML_INVALID.sub("\ufffd", "" if value is None else str(value))


def _format_of(row: dict[str, Any], payload: dict[str, Any]) -> str:
    if row.get("format"):
        return str(row["format"])
    verdict = (payload.get("artifacts") or {}).get(row.get("artifact"), {})
    if verdict.get("format"):
        return str(verdict["format"])
    return _FORMAT_BY_SUFFIX.get(Path(str(row.get("artifact", ""))).suffix.lower(), "unknown")


def _seconds(row: dict[str, Any]) -> float:
    """Single-image latency in seconds (0 when the row was not timed)."""
    ms = row.get("latency_ms")
    return float(ms) / 1000.0 if isinstance(ms, (int, float)) and ms == ms and ms >= 0 else 0.0


def _row_violations(row: dict[str, Any]) -> list[str]:
    out = [str(v) for v in row.get("violations") or []]
    if not out and row.get("status") not in (None, "ok", "skipped"):
        out = [str(row.get("error") or "did not run")]
    if not out and row.get("passed") is False and row.get("status") == "ok":
        out = ["failed (no violation recorded)"]
    return out


def _case(parent: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(parent, "testcase", classname=_x(classname), name=_x(name), time=f"{seconds:.6f}")


def _fail(case: ET.Element, tag: str, kind: str, lines: list[str]) -> None:
    text = "\n".join(_x(v) for v in lines)
    el = ET.SubElement(case, tag, message=text, type=kind)
    el.text = text


def _cases(payload: dict[str, Any]) -> Iterable[tuple[dict[str, Any], str, str]]:
    """(row, classname, name) per testcase-worthy row; names made unique with the implementation."""
    seen: dict[tuple[str, str], int] = {}
    picked = []
    for row in payload.get("rows") or []:
        if row.get("is_reference"):
            if row.get("passed", row.get("status") == "ok"):
                continue
            classname = "parity.reference"
        else:
            classname = f"parity.{_format_of(row, payload)}.{row.get('precision', 'unknown')}"
        name = f"{row.get('artifact')} @ {row.get('runtime')}"
        seen[(classname, name)] = seen.get((classname, name), 0) + 1
        picked.append((row, classname, name))
    for row, classname, name in picked:
        if seen[(classname, name)] > 1:
            name = f"{name} ({row.get('implementation')})"
        yield row, classname, name


def junit_tree(payload: dict[str, Any]) -> ET.ElementTree:
    """The JUnit document: ``<testsuites>`` around one ``<testsuite name="moleport parity">``."""
    root = ET.Element("testsuites", name=SUITE_NAME)
    suite = ET.SubElement(root, "testsuite", name=SUITE_NAME)
    if payload.get("created"):
        suite.set("timestamp", _x(payload["created"]))
    props = ET.SubElement(suite, "properties")
    for key in ("bundle", "split", "n", "threshold", "split_manifest_sha256"):
        if payload.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=_x(payload[key]))
    for key, value in sorted((payload.get("gates") or {}).items()):
        ET.SubElement(props, "property", name=f"gate.{key}", value=_x(value))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    for row, classname, name in _cases(payload):
        seconds = _seconds(row)
        total += seconds
        case = _case(suite, classname, name, seconds)
        counts["tests"] += 1
        status = row.get("status")
        if status == "skipped":
            ET.SubElement(case, "skipped", message=_x(row.get("error") or "skipped"))
            counts["skipped"] += 1
        elif status != "ok" and not row.get("passed"):
            _fail(case, "error", "parity.runtime", _row_violations(row))
            counts["errors"] += 1
        elif not row.get("passed"):
            _fail(case, "failure", "parity.gate", _row_violations(row))
            counts["failures"] += 1
        info = [f"implementation: {row.get('implementation')}", f"gate: {row.get('gate')}",
                f"max |dp|: {row.get('max_abs_dp')}", f"flips: {row.get('flips')}", f"n: {row.get('n')}",
                f"latency_ms: {row.get('latency_ms')}"]
        ET.SubElement(case, "system-out").text = _x("\n".join(info))
    problems = [str(p) for p in payload.get("problems") or []]
    if problems:
        case = _case(suite, "parity.bundle", "bundle problems", 0.0)
        _fail(case, "failure", "parity.bundle", problems)
        counts["tests"] += 1
        counts["failures"] += 1
    notes = [str(n) for n in payload.get("notes") or []]
    if notes:
        ET.SubElement(suite, "system-out").text = _x("\n".join(notes))
    for el in (root, suite):
        for key, value in counts.items():
            el.set(key, str(value))
        el.set("time", f"{total:.6f}")
    return ET.ElementTree(root)


def render_junit_xml(payload: dict[str, Any]) -> str:
    tree = junit_tree(payload)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=False)


def write_junit_xml(payload: dict[str, Any], path: str | Path) -> Path:
    """Write the payload as JUnit XML to ``path`` (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + render_junit_xml(payload) + "\n",
                    encoding="utf-8")
    return path


# --- Markdown step summary -------------------------------------------------------------------------------

def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and value == value else "–"


def _artifact_lines(payload: dict[str, Any]) -> list[str]:
    by_artifact: dict[str, list[dict[str, Any]]] = {}
    for row in payload.get("rows") or []:
        if not row.get("is_reference"):
            by_artifact.setdefault(str(row.get("artifact")), []).append(row)
    lines = []
    for artifact, rows in by_artifact.items():
        verdict = (payload.get("artifacts") or {}).get(artifact, {})
        passed = verdict.get("passed", all(bool(r.get("passed")) for r in rows))
        runtimes = ", ".join(f"{r.get('runtime')} {'pass' if r.get('passed') else 'FAIL'}"
                             + ("" if r.get("status") in (None, "ok") else " (error)") for r in rows)
        dps = [r["max_abs_dp"] for r in rows if isinstance(r.get("max_abs_dp"), (int, float))]
        flips = [r["flips"] for r in rows if isinstance(r.get("flips"), int)]
        lines.append(f"| `{_cell(artifact)}` | {_cell(rows[0].get('precision', '–'))} | {_cell(runtimes)} | "
                     f"{_num(max(dps), '.2e') if dps else '–'} | {max(flips) if flips else '–'} | "
                     f"{'✅ pass' if passed else '❌ FAIL'} |")
    return lines


def render_ci_summary(payload: dict[str, Any]) -> str:
    rows = [r for r in payload.get("rows") or [] if not r.get("is_reference")]
    ok = sum(1 for r in rows if r.get("passed"))
    violations = [str(v) for v in payload.get("violations") or []]
    artifacts = payload.get("artifacts") or {}
    n_art = len(artifacts) or len({r.get("artifact") for r in rows})
    n_art_ok = sum(1 for v in artifacts.values() if v.get("passed"))
    where = f" · split {payload['split']} ({payload.get('n', '?')} images)" if payload.get("split") else ""
    if payload.get("passed"):
        head = f"### ✅ Parity PASSED: {ok}/{len(rows)} artifact × runtime checks, {n_art} artifact(s){where}"
    elif payload.get("required_passed") and payload.get("rejected"):
        head = (f"### ✅ Parity PASSED for fp32/fp16 · ⚠️ {len(payload['rejected'])} optional artifact(s) REJECTED "
                f"(not shipped): {len(rows) - ok} of {len(rows)} artifact × runtime checks failed, "
                f"{len(violations)} violation(s){where}")
    else:
        head = (f"### ❌ Parity FAILED: {len(rows) - ok} of {len(rows)} artifact × runtime checks failed, "
                f"{n_art - n_art_ok} of {n_art} artifact(s), {len(violations)} violation(s){where}")
    lines = [head, ""]
    table = _artifact_lines(payload)
    if table:
        lines += ["| artifact | precision | runtimes | max \\|Δp\\| | flips | verdict |",
                  "|---|---|---|---|---|---|", *table, ""]
    if violations:
        lines += ["**Violations**", ""]
        lines += [f"- {v.replace(chr(10), ' ')}" for v in violations[:MAX_VIOLATIONS_LISTED]]
        if len(violations) > MAX_VIOLATIONS_LISTED:
            lines.append(f"- … {len(violations) - MAX_VIOLATIONS_LISTED} more in parity.json")
        lines.append("")
    if payload.get("bundle"):
        lines += [f"Full report: `{payload['bundle']}/parity.md` (and parity.html)", ""]
    return "\n".join(lines) + "\n"


def write_ci_summary(payload: dict[str, Any], path: str | Path, *, append: bool = False) -> Path:
    """Write (or, with ``append``, add to: GitHub's step summary file is shared) the Markdown summary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write(render_ci_summary(payload))
    return path
