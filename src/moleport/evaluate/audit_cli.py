"""``moleport audit source-shortcut``: can the source of an image be told from cheap statistics?"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from moleport.evaluate.errors import EvaluationError


def register(subparsers) -> None:
    p = subparsers.add_parser("audit", help="data audits (source shortcut)")
    sub = p.add_subparsers(dest="audit", required=True)
    s = sub.add_parser("source-shortcut", help="probe whether image statistics reveal the SOURCE of each image",
                       description="Fit a cross-validated logistic-regression probe on cheap image statistics "
                                   "(geometry before resize, colour histograms, border darkness) to predict the "
                                   "source; optionally report a classifier's metrics per source.")
    s.add_argument("--sources", nargs="+", required=True, help="data source folders (or one --preset paper root)")
    s.add_argument("--preset", default=None, help="data source preset applied to every source (e.g. paper)")
    s.add_argument("--model", default=None, help="checkpoint or artifact to report per source")
    s.add_argument("--threshold", type=float, default=None, help="threshold for --model (default spec.threshold)")
    s.add_argument("--per-source", type=int, default=300, help="images drawn per source for the probe (equal counts)")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--bootstrap", type=int, default=1000)
    s.add_argument("--out", required=True, help="output folder (audit.json, audit.md)")
    s.set_defaults(func=run)


def _with_ci(r: dict[str, Any], k: str) -> str:
    if r[k] is None or r[k] != r[k]:
        return "n/a"
    return f"{r[k]:.3f} [{r[k + '_ci'][0]:.3f}, {r[k + '_ci'][1]:.3f}]"


def render_markdown(rep: dict[str, Any]) -> str:
    a = rep["audit"]
    chance = a["probes"]["all"]["chance_accuracy"]
    lines = [f"# Source-shortcut audit: {', '.join(a['sources'])}", "",
             f"Label counts per source (all images): {a['label_by_source_all']}", "",
             f"Probe: {a['probe']}, {a['folds']} folds ({a['cv_grouping']}-grouped), "
             f"{a['per_source_sample']} images per source (chance accuracy {chance:.2f}).", "",
             "| features | accuracy | balanced accuracy | AUC |", "|---|---|---|---|"]
    row = "| {} | {accuracy:.3f} | {balanced_accuracy:.3f} | {auc:.3f} |"
    lines += [row.format(g, **r) for g, r in a["probes"].items()]
    lines += [row.format(f"{key.split('/')[1]}, {key.split('/')[0]} only", **r) if "auc" in r
              else f"| {key} | {r['skipped']} | | |" for key, r in a["within_label"].items()]
    if rep.get("per_source"):
        lines += ["", f"Classifier `{rep['model']}` at threshold {rep['threshold']:.4f}:", "",
                  "| source | n (mel/nev) | AUC [95% CI] | sensitivity [95% CI] | specificity [95% CI] |",
                  "|---|---|---|---|---|"]
        fmt = _with_ci
        lines += [f"| {n} | {r['n']} ({r['counts']['melanoma']}/{r['counts']['nevus']}) | {fmt(r, 'auc')} | "
                  f"{fmt(r, 'sensitivity')} | {fmt(r, 'specificity')} |" for n, r in rep["per_source"].items()]
    return "\n".join(lines) + "\n"


def audit(args: argparse.Namespace) -> dict[str, Any]:
    from moleport.evaluate.audit import per_source_metrics, source_items, source_shortcut_audit
    from moleport.evaluate.evaluation import predict_with, write_json
    from moleport.evaluate.predictors import load_predictor

    items = source_items(args.sources, args.preset)
    rep: dict[str, Any] = {"audit": source_shortcut_audit(items, args.per_source, args.folds, args.seed),
                           "source_paths": [str(Path(s).resolve()) for s in args.sources], "preset": args.preset}
    if args.model:
        pred = load_predictor(args.model)
        p = predict_with(pred, items)
        thr = float(pred.spec.threshold if args.threshold is None else args.threshold)
        rep.update(model=str(args.model), threshold=thr,
                   per_source=per_source_metrics(items, np.asarray(p), thr, args.bootstrap, args.seed))
    out = Path(args.out)
    write_json(out / "audit.json", rep)
    (out / "audit.md").write_text(render_markdown(rep), encoding="utf-8")
    return rep


def run(args: argparse.Namespace) -> int:
    try:
        rep = audit(args)
    except (EvaluationError, ValueError) as exc:
        print(f"moleport audit source-shortcut: error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(rep))
    print(f"wrote {args.out}/audit.json and audit.md")
    return 0
