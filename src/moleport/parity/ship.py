"""The one ship decision: which artifact each app bundles, computed once and written into parity.json.

An artifact ships only when every runtime that ran it passed its gates (``parity.json["artifacts"]``).
Per app target the decision names the fp32 artifact (always bundled, the fallback) and the default:
the smallest artifact of the target's format that passed. ``MODEL_CARD.md``, ``make android-assets``
(android_demo/scripts/copy_assets.sh) and the web build (web_demo/scripts/build.mjs) read
``parity.json["ship"]`` and nothing else.
"""
from __future__ import annotations

from typing import Any, Iterable

#: Precisions whose parity failure fails the job that judged them (make export, make ship, moleport calibrate). The
#: int8 and w8 variants are optional size/speed trade-offs: when they fail their gates they are *rejected* (listed
#: loudly, never shipped), not fatal.
REQUIRED_PRECISIONS = ("fp32", "fp16")

#: App target -> the artifact format it runs.
TARGETS = {"android": "tflite", "web": "tflite", "ios": "coreml", "executorch": "executorch"}


def decide(files: Iterable[Any], verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``files``: manifest entries or ArtifactFile objects (path/rel, format, precision, bytes)."""
    entries = [_entry(f) for f in files]
    out: dict[str, Any] = {}
    for target, fmt in TARGETS.items():
        mine = [e for e in entries if e["format"] == fmt]
        if target == "web":  # LiteRT.js: only what its own runtime judged, when it ran
            mine = [e for e in mine if "litertjs" in verdicts.get(e["path"], {}).get("runtimes", {})] or mine
        passed = [e for e in mine if verdicts.get(e["path"], {}).get("passed")]
        fp32 = next((e for e in passed if e["precision"] == "fp32"), None)
        default = min(passed, key=lambda e: (e["bytes"] or 0, e["precision"] != "fp32")) if fp32 else None
        out[target] = {
            "format": fmt, "fp32": fp32["path"] if fp32 else None, "default": default["path"] if default else None,
            "default_precision": default["precision"] if default else None,
            "ships": [e["path"] for e in passed],
            "rejected": {e["path"]: _why(e["path"], verdicts) for e in mine if e not in passed},
            "why": _reason(fp32, default, mine, passed),
        }
    return out


def _entry(f: Any) -> dict[str, Any]:
    if isinstance(f, dict):
        return {"path": f["path"], "format": f["format"], "precision": f["precision"], "bytes": f.get("bytes")}
    return {"path": f.rel, "format": f.format, "precision": f.precision, "bytes": f.bytes}


def _why(path: str, verdicts: dict[str, dict[str, Any]]) -> str:
    v = verdicts.get(path)
    if v is None:
        return "not judged by parity"
    failed = [rt for rt, ok in v.get("runtimes", {}).items() if not ok]
    return f"failed its parity gates in {', '.join(failed)}" if failed else "failed its parity gates"


def _reason(fp32, default, mine, passed) -> str:
    if not mine:
        return "no artifact of this format was exported"
    if fp32 is None:
        return "nothing ships: the fp32 artifact did not pass parity"
    if default is fp32:
        return "fp32 only: no smaller artifact passed parity"
    return (f"{default['precision']} ({default['bytes']:,} bytes) is the smallest artifact that passed parity; "
            f"fp32 ships beside it")
