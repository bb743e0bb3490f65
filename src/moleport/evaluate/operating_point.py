"""Operating point: the threshold chosen on VALIDATION data for a target melanoma sensitivity.

The threshold is picked on the manifest's ``val`` split only (never on test or external
data), then reported on ``test`` and on external sources with bootstrap CIs.

Temperature scaling (``calibrate=True``) is fitted on val too, on the model's own output. It
goes into ``spec_with_threshold.json``: ``temperature`` becomes the model's temperature times the
fitted one and ``threshold`` the same operating point on the calibrated probability, so an
export of that spec (the graph divides the logit by the temperature) reproduces both. Temperature
scaling is monotone: AUC and every decision stay as they were; only the probabilities (ECE) move.
The evaluation folders report the model as it is (its current spec).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moleport import metrics
from moleport.calibration import apply_temperature, fit_temperature, reliability
from moleport.evaluate.dataset import labels_of, open_eval_items
from moleport.evaluate.errors import EvaluationError
from moleport.evaluate.evaluation import predict_with, write_evaluation, write_json
from moleport.evaluate.predictors import load_predictor


def choose_operating_point(y_val, p_val, target: float = 0.95, calibrate: bool = False,
                           confidence: float | None = None) -> dict[str, Any]:
    """Threshold on raw P(melanoma) reaching ``target`` sensitivity on val (with ``confidence``: its one-sided
    Clopper-Pearson lower bound reaching it) (+ optional temperature)."""
    yv = np.asarray(y_val).astype(int)
    if yv.sum() == 0 or yv.sum() == len(yv):
        raise EvaluationError("the validation split needs both melanoma and nevus to choose a threshold")
    try:
        op = metrics.threshold_for_sensitivity(yv, p_val, target, confidence)
    except ValueError as exc:
        raise EvaluationError(f"the validation split cannot set this operating point: {exc}") from None
    val = {"n": int(len(yv)), "n_melanoma": int(yv.sum()), "sensitivity": op["sensitivity"],
           "specificity": op["specificity"]}
    if confidence is not None:
        val["sensitivity_lower_bound"] = op["sensitivity_lower_bound"]
    out: dict[str, Any] = {"threshold": op["threshold"], "target_sensitivity": float(target),
                           "confidence": confidence, "chosen_on": "val", "val": val, "temperature": None}
    if calibrate:
        fit = fit_temperature(yv, p_val)
        pc = apply_temperature(p_val, fit["temperature"])
        out["temperature"] = {**fit, "stored_in_spec": "spec_with_threshold.json",
                              "calibrated_threshold": float(apply_temperature([op["threshold"]], fit["temperature"])[0]),
                              "val_ece_before": reliability(yv, p_val)["ece"],
                              "val_ece_after": reliability(yv, pc)["ece"]}
    return out


def _calibration_note(y, p, op: dict[str, Any]) -> dict[str, Any] | None:
    t = op.get("temperature")
    if not t:
        return None
    return {"temperature": t["temperature"], "ece_before": reliability(y, p)["ece"],
            "ece_after": reliability(y, apply_temperature(p, t["temperature"]))["ece"]}


def _row(name: str, res: dict[str, Any]) -> str:
    f = lambda k: f"{res[k]:.3f} [{res[k + '_ci'][0]:.3f}, {res[k + '_ci'][1]:.3f}]"  # noqa: E731
    return f"| {name} | {res['n']} | {f('auc')} | {f('sensitivity')} | {f('specificity')} | {res['ece']:.3f} |"


def rule_text(op: dict[str, Any]) -> str:
    """How the threshold was chosen, in words."""
    if op.get("confidence") is None:
        return f"chosen on val for sensitivity >= {op['target_sensitivity']:g}"
    return (f"chosen on val so that the one-sided {op['confidence']:g} Clopper-Pearson lower bound on sensitivity "
            f"is >= {op['target_sensitivity']:g}")


def render_markdown(op: dict[str, Any], results: dict[str, dict]) -> str:
    v = op["val"]
    bound = f", lower bound {v['sensitivity_lower_bound']:.3f}" if "sensitivity_lower_bound" in v else ""
    lines = [f"Operating point: threshold {op['threshold']:.4f} on P(melanoma), {rule_text(op)} (val: sensitivity "
             f"{v['sensitivity']:.3f}{bound}, specificity {v['specificity']:.3f}, n={v['n']})", "",
             "| data | n | AUC [95% CI] | sensitivity [95% CI] | specificity [95% CI] | ECE |",
             "|---|---|---|---|---|---|"]
    lines += [_row(name, res) for name, res in results.items()]
    if op.get("temperature"):
        t = op["temperature"]
        lines += ["", f"Temperature scaling (fitted on val, stored in spec_with_threshold.json with the same operating "
                      f"point {t['calibrated_threshold']:.4f} on the calibrated probability): T = {t['temperature']:.3f}; "
                      f"val ECE {t['val_ece_before']:.3f} -> {t['val_ece_after']:.3f}."]
        lines += [f"- {n}: ECE {r['calibrated']['ece_before']:.3f} -> {r['calibrated']['ece_after']:.3f}"
                  for n, r in results.items() if r.get("calibrated")]
    return "\n".join(lines)


def operating_point_report(model: str | Path, manifest: str | Path, out: str | Path, *, externals=(),
                           target: float = 0.95, calibrate: bool = False, n_boot: int = 1000, seed: int = 0,
                           threads: int = 2, tta: str | None = None,
                           confidence: float | None = None) -> dict[str, Any]:
    """Choose the threshold on val; evaluate test and each external source at it; write ``out``. With ``tta``
    every score (val included) is the model's logit averaged over that rule's views."""
    out_dir = Path(out)
    pred = load_predictor(model, threads=threads, tta=tta)
    val_items = open_eval_items(manifest, split="val")
    p_val = predict_with(pred, val_items, manifest, "val")
    op = choose_operating_point(labels_of(val_items), p_val, target, calibrate, confidence)
    datasets = {"test": (open_eval_items(manifest, split="test"), {"source": str(manifest), "split": "test"})}
    for ext in externals:
        datasets[f"external-{Path(ext).name}"] = (open_eval_items(ext), {"source": str(ext), "external": True})
    results = {}
    for name, (items, info) in datasets.items():
        p = predict_with(pred, items, info["source"], info.get("split"))
        res = write_evaluation(out_dir / name, items, p, pred, op["threshold"], data=info, n_boot=n_boot, seed=seed,
                               threshold_source=rule_text(op))
        res["calibrated"] = _calibration_note(labels_of(items), p, op)
        results[name] = res
    t = op.get("temperature")
    chosen = (pred.spec.replace(threshold=t["calibrated_threshold"], temperature=pred.spec.temperature * t["temperature"])
              if t else pred.spec.replace(threshold=float(op["threshold"])))
    spec_path = chosen.save(out_dir / "spec_with_threshold.json")
    md = render_markdown(op, results)
    (out_dir / "operating_point.md").write_text(md + "\n", encoding="utf-8")
    summary = {"operating_point": op, "spec_with_threshold": str(spec_path),
               "results": {n: {k: r[k] for k in ("n", "counts", "auc", "auc_ci", "sensitivity", "sensitivity_ci",
                                                  "specificity", "specificity_ci", "ece", "calibrated")}
                           for n, r in results.items()}}
    write_json(out_dir / "operating_point.json", summary)
    return {**summary, "markdown": md}
