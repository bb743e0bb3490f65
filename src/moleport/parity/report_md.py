"""parity.md: tables per format/precision that read well in a CI log or a GitHub step summary."""
from __future__ import annotations

from typing import Any

FORMAT_ORDER = ("pytorch", "onnx", "tflite", "coreml", "executorch")
PRECISION_ORDER = ("fp32", "fp16", "w8", "int8")


def fmt(value: Any, spec: str = ".4f", none: str = "–") -> str:
    if value is None:
        return none
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "–"
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _pp(delta: float | None) -> str:
    return "–" if delta is None else f"{delta * 100:+.2f} pp"


def groups(rows: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Rows grouped by (format, precision), reference first."""
    keys = sorted({(r["format"], r["precision"]) for r in rows},
                  key=lambda k: (FORMAT_ORDER.index(k[0]) if k[0] in FORMAT_ORDER else 99,
                                 PRECISION_ORDER.index(k[1]) if k[1] in PRECISION_ORDER else 99))
    return [(f, p, [r for r in rows if (r["format"], r["precision"]) == (f, p)]) for f, p in keys]


HEADER = ("| artifact | runtime (implementation) | max \\|Δp\\| | p99 \\|Δp\\| | flips (in band / outside) | CM = ref | "
          "accuracy (Δ) | sens / spec (Δ) | AUC (Δ) | size | latency | gate | result |")


def cell(text: Any) -> str:
    """Table-safe text: pipes escaped, newlines removed."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def row_line(r: dict[str, Any]) -> str:
    r = {**r, "gate": cell(r.get("gate", "")), "implementation": cell(r["implementation"])}
    who = f"{r['runtime']} ({r['implementation']})"
    result = "✅ pass" if r.get("passed") else "❌ FAIL"
    if r.get("status") != "ok":
        return (f"| `{r['artifact']}` | {who} | – | – | – | – | – | – | – | {_size(r.get('bytes'))} | – | "
                f"{r.get('gate', '')} | ❌ error |")
    m, d = r.get("metrics", {}), r.get("delta", {})
    if r.get("is_reference"):
        return (f"| `{r['artifact']}` | {who} | reference | | | | {fmt(m.get('accuracy'))} | "
                f"{fmt(m.get('recall'))} / {fmt(m.get('specificity'))} | {fmt(m.get('auc'))} | "
                f"{_size(r.get('bytes'))} | {fmt(r.get('latency_ms'), '.1f')} ms | – | reference |")
    cm = "yes" if r.get("confusion_identical") else "**no**"
    band = r.get("band")
    flips = f"{r['flips']} ({band['inside']} / {band['outside']})" if band else f"{r['flips']}"
    return (f"| `{r['artifact']}` | {who} | {fmt(r['max_abs_dp'], '.2e')} | {fmt(r.get('p99_abs_dp'), '.2e')} | "
            f"{flips} | {cm} | {fmt(m.get('accuracy'))} ({_pp(d.get('accuracy'))}) | "
            f"{fmt(m.get('recall'), '.3f')} / {fmt(m.get('specificity'), '.3f')} "
            f"({_pp(d.get('recall'))} / {_pp(d.get('specificity'))}) | "
            f"{fmt(m.get('auc'))} ({fmt(d.get('auc'), '+.4f')}) | {_size(r.get('bytes'))} | "
            f"{fmt(r.get('latency_ms'), '.1f')} ms | {r.get('gate', '')} | {result} |")


def _reference_block(payload: dict[str, Any]) -> list[str]:
    ref = payload["reference"]
    if ref.get("status") != "ok" or "evaluation" not in ref:
        return [f"**Reference failed:** {ref.get('error')}", ""]
    ev = ref["evaluation"]
    (mm, mn), (nm, nn) = ev["confusion_matrix"]
    c, p = ev["clinical"], ev["paper"]
    return [
        f"Reference: PyTorch eager fp32 `{ref.get('checkpoint')}` — confusion matrix (rows true, cols pred "
        f"[melanoma, nevus]): `[[{mm}, {mn}], [{nm}, {nn}]]`",
        "",
        "| convention | accuracy | precision | recall | specificity | F1 | AUC |",
        "|---|---|---|---|---|---|---|",
        f"| clinical (melanoma +) | {c['accuracy']:.4f} | {c['precision']:.4f} | {c['recall']:.4f} | "
        f"{c['specificity']:.4f} | {c['f1']:.4f} | {fmt(ev.get('auc'))} |",
        f"| paper (nevus +) | {p['accuracy']:.4f} | {p['precision']:.4f} | {p['recall']:.4f} | "
        f"{p['specificity']:.4f} | {p['f1']:.4f} | {fmt(ev.get('auc'))} |",
        "",
    ]


def _flip_lines(rows: list[dict[str, Any]], limit: int = 25) -> list[str]:
    out = []
    for r in rows:
        flips = r.get("flipped") or []
        if not flips:
            continue
        out.append(f"<details><summary>{r['artifact']} @ {r['runtime']}: {len(flips)} flipped image(s)</summary>\n")
        out.append("| file | true | P(mel) reference | P(mel) artifact |")
        out.append("|---|---|---|---|")
        out += [f"| `{f['file']}` | {f['label']} | {f['p_reference']:.6f} | {f['p']:.6f} |" for f in flips[:limit]]
        if len(flips) > limit:
            out.append(f"| … {len(flips) - limit} more in parity.json | | | |")
        out.append("\n</details>\n")
    return out


def _ship_lines(ship: dict[str, Any]) -> list[str]:
    """The ship decision (parity.json ``ship``): what each app bundles, and why."""
    if not ship:
        return []
    out = ["### What ships", "", "| app | default | fp32 beside it | why |", "|---|---|---|---|"]
    for target, d in ship.items():
        out.append(f"| {target} | `{d.get('default') or '–'}` | `{d.get('fp32') or '–'}` | {cell(d.get('why', ''))} |")
    return out + [""]


def verdict_text(payload: dict[str, Any]) -> str:
    """The one-line verdict: PASSED; PASSED with optional (w8/int8) artifacts REJECTED; or FAILED."""
    n = len(payload.get("violations") or [])
    if payload.get("passed"):
        return "✅ PASSED"
    rejected = payload.get("rejected") or []
    if payload.get("required_passed") and rejected:
        return (f"✅ PASSED (fp32/fp16) · ⚠️ {len(rejected)} optional artifact(s) REJECTED, not shipped "
                f"({n} violation(s))")
    return f"❌ FAILED ({n} violation(s))"


def render_markdown(payload: dict[str, Any]) -> str:
    status = verdict_text(payload)
    lines = [f"## Parity {status}", "",
             f"Bundle `{payload['bundle']}` · split **{payload['split']}** ({payload['n']} images) · "
             f"threshold {payload['threshold']} on P(melanoma)", ""]
    lines += _reference_block(payload)
    for fmt_name, precision, rows in groups(payload["rows"]):
        lines += [f"### {fmt_name} · {precision}", "", HEADER, "|" + "---|" * 13]
        lines += [row_line(r) for r in rows]
        lines.append("")
    lines += _ship_lines(payload.get("ship") or {})
    if payload["violations"]:
        lines += ["### Violations", ""] + [f"- {v}" for v in payload["violations"]] + [""]
    if payload.get("notes"):
        lines += ["### Notes", ""] + [f"- {n}" for n in payload["notes"]] + [""]
    lines += _flip_lines(payload["rows"])
    return "\n".join(lines) + "\n"
