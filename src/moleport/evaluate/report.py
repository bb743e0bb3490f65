"""Figures (ROC, reliability diagram) and the Markdown + HTML evaluation report."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    roc = result["roc"]
    lo, hi = result["auc_ci"]
    ax.plot(roc["fpr"], roc["tpr"], lw=1.8, label=f"AUC {_f(result['auc'])} (95% CI {_f(lo)}-{_f(hi)})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.scatter([1 - result["specificity"]], [result["sensitivity"]], c="red", zorder=3,
               label=f"threshold {result['threshold']:.3f}")
    ax.set(xlabel="1 - specificity (nevus called melanoma)", ylabel="sensitivity (melanoma caught)",
           title="ROC, melanoma positive", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_reliability(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    cal = result["calibration"]
    bins = [b for b in cal["bins"] if b["count"]]
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(4.5, 5.5), dpi=110, sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfect calibration")
    ax.plot([b["mean_p"] for b in bins], [b["frac_melanoma"] for b in bins], marker="o", label="model")
    ax.set(ylabel="observed fraction melanoma", title=f"Reliability (ECE {cal['ece']:.3f}, {cal['n_bins']} bins)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    width = 1.0 / cal["n_bins"]
    axh.bar([b["lo"] for b in cal["bins"]], [b["count"] for b in cal["bins"]], width=width, align="edge")
    axh.set(xlabel="predicted P(melanoma)", ylabel="images")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _f(v: Any, nd: int = 3) -> str:
    try:
        return "n/a" if v is None or v != v else f"{float(v):.{nd}f}"
    except (TypeError, ValueError):
        return str(v)


def _prf(m: dict[str, Any]) -> str:
    return f"{_f(m['precision'])} / {_f(m['recall'])} / {_f(m['f1'])}"


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    clin, paper = result["metrics"]["clinical"], result["metrics"]["paper"]
    ci = lambda k: f"{_f(result[k])} [{_f(result[k + '_ci'][0])}, {_f(result[k + '_ci'][1])}]"  # noqa: E731
    return [
        ("images (melanoma / nevus)", f"{result['n']} ({result['counts']['melanoma']} / {result['counts']['nevus']})"),
        ("threshold on P(melanoma)", f"{result['threshold']:.4f} ({result.get('threshold_source', '')})"),
        ("AUC [95% CI]", ci("auc")),
        ("sensitivity, melanoma [95% CI]", ci("sensitivity")),
        ("specificity, melanoma positive [95% CI]", ci("specificity")),
        ("bootstrap", f"{result['bootstrap']['n_boot']} draws, seed {result['bootstrap']['seed']}, "
                      f"resampling {result['bootstrap']['grouping']}s ({result['n_resampling_units']} units)"),
        ("ECE (10 bins)", _f(result["ece"])),
        ("accuracy", _f(clin["accuracy"])),
        ("clinical precision / recall / F1 (melanoma +)", _prf(clin)),
        ("paper precision / recall / F1 (nevus +)", _prf(paper)),
        ("confusion [[mel→mel, mel→nev], [nev→mel, nev→nev]]", str(result["metrics"]["confusion_matrix"])),
    ]


def render_markdown(result: dict[str, Any]) -> str:
    model = result.get("model", {})
    lines = [f"# Evaluation: {Path(model.get('path', 'model')).name}", "",
             f"- model: `{model.get('path', '')}` ({model.get('kind', '')}, {model.get('architecture', '')})",
             f"- data: `{result.get('data', {}).get('source', '')}`", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(result)]
    lines += ["", "![ROC](roc.png)", "", "![Reliability](reliability.png)", "",
              "CIs are 95 % percentile bootstrap intervals; where lesion ids exist whole lesions are resampled.", ""]
    return "\n".join(lines)


def render_html(result: dict[str, Any]) -> str:
    model = result.get("model", {})
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in summary_rows(result))
    title = html.escape(f"Evaluation: {Path(model.get('path', 'model')).name}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{padding:2px 8px;"
            "border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{title}</h1><p>model <code>{html.escape(str(model.get('path', '')))}</code>; data "
            f"<code>{html.escape(str(result.get('data', {}).get('source', '')))}</code></p>"
            f"<table>{rows}</table><p><img src='roc.png' alt='ROC'> <img src='reliability.png' alt='reliability'></p>"
            "<p>CIs are 95 % percentile bootstrap intervals; where lesion ids exist whole lesions are resampled.</p>"
            "</body></html>")


def write_reports(result: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """roc.png, reliability.png, report.md and report.html in ``out_dir``; returns their names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(result, out_dir / "roc.png")
    plot_reliability(result, out_dir / "reliability.png")
    (out_dir / "report.md").write_text(render_markdown(result), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(result), encoding="utf-8")
    return {"roc": "roc.png", "reliability": "reliability.png", "markdown": "report.md", "html": "report.html"}
