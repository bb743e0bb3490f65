"""parity.json / parity.md / parity.html (+ the per-image predictions they are drawn from)."""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moleport.jsonio import atomic_path, write_text_atomic

PREDICTIONS_FILE = "parity_predictions.npz"
MAX_FLIPS_LISTED = 25


@dataclass(frozen=True)
class Predictions:
    files: tuple[str, ...]
    y: np.ndarray
    reference: np.ndarray
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # row key -> P(melanoma)


def save_predictions(root: Path, preds: Predictions) -> Path:
    keys = sorted(preds.rows)
    arrays = {f"row{i}": preds.rows[k] for i, k in enumerate(keys)}
    path = Path(root) / PREDICTIONS_FILE
    with atomic_path(path, suffix=".npz", mode=0o644) as tmp:
        np.savez_compressed(tmp, files=np.array(preds.files), y=preds.y, reference=preds.reference,
                            keys=np.array(keys, dtype=str), **arrays)
    return path


def load_predictions(root: Path) -> Predictions:
    path = Path(root) / PREDICTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run run_parity first)")
    with np.load(path, allow_pickle=False) as z:
        keys = [str(k) for k in z["keys"]]
        rows = {k: z[f"row{i}"] for i, k in enumerate(keys)}
        return Predictions(files=tuple(str(f) for f in z["files"]), y=z["y"], reference=z["reference"], rows=rows)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _atomic_write(path: Path, text: str) -> None:
    write_text_atomic(path, text, what="parity report", mode=0o644)


def write_reports(root: str | Path, payload: dict[str, Any], preds: Predictions | None,
                  stem: str = "parity") -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.html`` into ``root``; return their paths."""
    from moleport.parity.report_html import render_html
    from moleport.parity.report_md import render_markdown

    root = Path(root)
    out = {k: root / f"{stem}.{k}" for k in ("json", "md", "html")}
    _atomic_write(out["json"], json.dumps(_clean(payload), indent=1, allow_nan=False) + "\n")
    _atomic_write(out["md"], render_markdown(payload))
    _atomic_write(out["html"], render_html(payload, preds))
    return out


def esc(text: Any) -> str:
    return html.escape(str(text))
