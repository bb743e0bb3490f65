"""parity.html: the tables plus matplotlib figures embedded as base64 PNG (one self-contained file)."""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from moleport.metrics import roc
from moleport.parity.report import Predictions, esc
from moleport.parity.report_md import fmt, groups, verdict_text

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}
th{background:#f3f3f3}.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def roc_figure(preds: Predictions) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ref = roc(preds.y, preds.reference)
    for key, p in sorted(preds.rows.items()):
        r = roc(preds.y, p)
        ax.plot(r["fpr"], r["tpr"], lw=1, alpha=0.8, label=f"{key} (AUC {fmt(r['auc'])})")
    ax.plot(ref["fpr"], ref["tpr"], "k--", lw=2, label=f"reference (AUC {fmt(ref['auc'])})")
    ax.set(xlabel="1 − specificity (melanoma positive)", ylabel="sensitivity", title="ROC: artifacts over reference")
    ax.legend(fontsize=6, loc="lower right")
    return _png(fig)


def _grid(plt, n: int, cols: int, cell: tuple[float, float]):
    """A figure with ``n`` panels in rows of ``cols``; returns (fig, used axes), the spare axes hidden."""
    nrows = max(1, -(-n // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cell[0] * cols, cell[1] * nrows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def delta_histograms(preds: Predictions) -> str:
    plt = _pyplot()
    keys = sorted(preds.rows)
    fig, axes = _grid(plt, len(keys), 3, (4.2, 2.8))
    for ax, key in zip(axes, keys):
        d = np.abs(preds.rows[key] - preds.reference)
        bins = np.logspace(-9, 0, 46)
        ax.hist(np.clip(d, 1e-9, 1.0), bins=bins, color="tab:blue")
        ax.set_xscale("log")
        ax.set_title(f"{key}\nmax {d.max():.2e}", fontsize=7)
        ax.set_xlabel("|Δp| (values below 1e-9 shown at 1e-9)", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def confusion_figure(rows: list[dict[str, Any]]) -> str:
    plt = _pyplot()
    shown = [r for r in rows if r.get("confusion_matrix")]
    fig, axes = _grid(plt, len(shown), 4, (3.2, 3.0))
    for ax, r in zip(axes, shown):
        cm = np.asarray(r["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=10)
        ax.set_xticks([0, 1], ["mel", "nev"])
        ax.set_yticks([0, 1], ["mel", "nev"])
        ax.set_title(f"{r['artifact']}\n@{r['runtime']}", fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["artifact", "runtime", "implementation", "max |Δp|", "mean |Δp|", "flips", "CM = ref", "accuracy",
            "Δacc (pp)", "AUC", "ΔAUC", "bytes", "latency ms", "gate", "result"]
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        m, d = r.get("metrics") or {}, r.get("delta") or {}
        dacc = d.get("accuracy")
        result = ("reference" if r.get("is_reference") else "pass") if r.get("passed") else "FAIL"
        cells = [r["artifact"], r["runtime"], r["implementation"], fmt(r.get("max_abs_dp"), ".2e"),
                 fmt(r.get("mean_abs_dp"), ".2e"), fmt(r.get("flips")), fmt(r.get("confusion_identical")),
                 fmt(m.get("accuracy")), fmt(None if dacc is None else dacc * 100, "+.2f"), fmt(m.get("auc")),
                 fmt(d.get("auc"), "+.4f"), fmt(r.get("bytes")), fmt(r.get("latency_ms"), ".1f"), r.get("gate", ""),
                 result if r.get("status") == "ok" else f"ERROR: {r.get('error')}"]
        cls = "pass" if r.get("passed") else "fail"
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells[:-1]) + f'<td class="{cls}">{esc(cells[-1])}</td></tr>')
    return "\n".join(out) + "</table>"


def render_html(payload: dict[str, Any], preds: Predictions | None) -> str:
    status = verdict_text(payload).replace("✅ ", "").replace("⚠️ ", "").replace("❌ ", "")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>moleport parity</title><style>{STYLE}</style>"
             f"</head><body><h1 class='{'pass' if payload.get('required_passed', payload['passed']) else 'fail'}'>Parity {esc(status)}</h1>",
             f"<p>Bundle <code>{esc(payload['bundle'])}</code> · split <b>{esc(payload['split'])}</b> "
             f"({payload['n']} images) · threshold {payload['threshold']} on P(melanoma)</p>"]
    for fmt_name, precision, rows in groups(payload["rows"]):
        parts.append(f"<h2>{esc(fmt_name)} · {esc(precision)}</h2>{_table(rows)}")
    if payload["violations"]:
        parts.append("<h2>Violations</h2><ul>" + "".join(f"<li>{esc(v)}</li>" for v in payload["violations"]) + "</ul>")
    if payload.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in payload["notes"]) + "</ul>")
    if preds is not None and preds.rows:
        parts.append(f"<h2>ROC curves</h2><img alt='ROC curves' src='{roc_figure(preds)}'>")
        parts.append(f"<h2>|Δp| histograms</h2><img alt='delta histograms' src='{delta_histograms(preds)}'>")
    parts.append(f"<h2>Confusion matrices</h2><img alt='confusion matrices' src='{confusion_figure(payload['rows'])}'>")
    parts.append(f"<h2>Gates</h2><pre>{esc(payload['gates'])}</pre></body></html>")
    return "\n".join(parts) + "\n"
