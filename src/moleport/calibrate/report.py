"""calibration.md and the MODEL_CARD's site section, from :func:`moleport.calibrate.site.estimate`'s dict."""
from __future__ import annotations

from typing import Any

CARD_HEADING = "## Site calibration"


def _ci(r: dict[str, Any], key: str) -> str:
    v, ci = r.get(key), r.get(f"{key}_ci") or [None, None]
    if v is None or v != v:
        return "n/a"
    lo, hi = ci
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else f"{v:.3f}"


def results_table(est: dict[str, Any]) -> list[str]:
    """One row per part x threshold: the check part's specificity at the calibrated threshold beside the original."""
    lines = ["| data | threshold | n (melanoma/nevus) | sensitivity [95% CI] | specificity [95% CI] | AUC [95% CI] |",
             "|---|---|---|---|---|---|"]
    for part in ("calibration", "check"):
        for name in ("original", "calibrated"):
            r = est["results"].get(part, {}).get(name)
            if r is None:
                continue
            lines.append(f"| {part} part | {name} {r['threshold']:.4f} | {r['n']} ({r['counts']['melanoma']}/"
                         f"{r['counts']['nevus']}) | {_ci(r, 'sensitivity')} | {_ci(r, 'specificity')} | "
                         f"{_ci(r, 'auc')} |")
    return lines


def _parity_line(est: dict[str, Any]) -> str:
    par = est.get("parity")
    if not par:
        return "- parity: pending"
    if not par.get("rerun"):
        return (f"- parity: NOT re-run on this bundle ({par.get('why')}); parity.json holds the input bundle's verdicts, "
                f"judged at threshold {par.get('judged_threshold')}")
    failing = sorted(a for a, ok in (par.get("artifacts") or {}).items() if not ok)
    if par.get("passed"):
        verdict = "passed"
    elif par.get("ok"):
        newly = par.get("newly_rejected") or []
        still = [a for a in failing if a not in newly]
        verdict = "passed for the calibrated artifact and every fp32/fp16 artifact"
        verdict += f"; still rejected as in the input bundle: {still}" if still else ""
        verdict += (f"; newly REJECTED at the site threshold (optional precision, no longer shipped): {newly}"
                    if newly else "")
    else:
        verdict = f"FAILED ({len(par.get('violations', []))} violation(s); newly failing: {par.get('regressed')})"
    return (f"- parity (re-run on this bundle at the new threshold, split {par.get('split')}, n={par.get('n')}): "
            f"{verdict}; Android ships `{par.get('android_default')}`")


def render_markdown(est: dict[str, Any]) -> str:
    c = est["counts"]["calibration"]
    b = est["results"]["calibration"]["calibrated"]["bootstrap"]
    t = est["temperature"]
    lines = [
        f"# Site calibration: {est['site']}", "",
        f"- input bundle: `{est.get('input_bundle', '')}`; artifact `{est['artifact']}` ({est['artifact_kind']}) "
        f"run in its own runtime",
        f"- target melanoma sensitivity {est['target_sensitivity']:g}: threshold on P(melanoma) "
        f"**{est['threshold_before']:.4f} -> {est['threshold_after']:.4f}** (chosen on the calibration part"
        + (f", for a one-sided {est['confidence']:g} Clopper-Pearson lower bound on its sensitivity >= the target: "
           f"{est['calibration_lower_bound']:.3f}" if est.get("confidence") is not None else "") + ")",
        f"- calibration part: {c['melanoma'] + c['nevus']} images ({c['melanoma']} melanoma / {c['nevus']} nevus; "
        f"{c['melanoma_units']} melanoma resampling units), source `{est['data']['source']}`, images sha256 "
        f"`{est['data']['calibration_sha256'][:16]}…`",
        f"- check part: {est['check_part']}",
        f"- refusal rule: {est['min_melanomas']} melanomas needed for {est['target_sensitivity']:g} ({est['rule']})",
        f"- CIs: 95 % percentile bootstrap, {b['n_boot']} draws, seed {b['seed']}, resampling {b['grouping']}s. "
        f"The calibration part's sensitivity at the calibrated threshold is in-sample (>= target by construction); "
        f"the check part is the honest estimate.", "", *results_table(est), "",
        f"- temperature {t['spec_temperature']:.4g} (in the graph, unchanged): refitting on the calibration part would "
        f"give {t['would_be_temperature']:.4g}{' (at the search bound: the scores barely separate the classes here)' if t.get('fit_at_search_bound') else ''} "
        f"(ECE {t['ece_now']:.3f} -> {t['ece_if_refit']:.3f}); not applied: "
        f"{t['why']}",
        _parity_line(est),
    ]
    lines += [f"- warning: {w}" for w in est.get("warnings", [])]
    return "\n".join(lines) + "\n"


def card_section(est: dict[str, Any]) -> str:
    """The MODEL_CARD.md section recording the site's operating point."""
    chk = est["results"].get("check", {})
    rows = results_table(est)
    note = ("" if chk else "No held-out check part was given: the numbers are in-sample.\n")
    return "\n".join([
        f"Site **{est['site']}** ({est['created']}): the decision threshold on P(melanoma) was re-chosen on the site's "
        f"own labelled images for melanoma sensitivity {est['target_sensitivity']:g}: "
        f"{est['threshold_before']:.4f} -> **{est['threshold_after']:.4f}** (artifact `{est['artifact']}`). "
        f"spec.json carries it; the card's performance section was measured at the exported threshold. "
        f"Full report: calibration.md / calibration.json.", "", *rows, "", note]).rstrip() + "\n"
