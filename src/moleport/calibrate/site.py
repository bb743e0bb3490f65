"""Site calibration: a site's own labelled images choose the bundle's threshold; a new bundle carries it.

Steps of :func:`calibrate_site`:

1. verify the input bundle (documents, every artifact, parity seal) and pick the artifact the Android app ships
   (``parity.json["ship"]["android"]["default"]``, or ``--artifact``); it runs in its own runtime through
   :func:`moleport.evaluate.predictors.load_predictor`, so the scores are those a site's phone computes;
2. split the site's images into a calibration and a check part (``--split-half SEED``: lesion-grouped, stratified
   by diagnosis; or ``--check SOURCE``), refusing a calibration part with too few melanomas (:func:`min_melanomas`);
3. choose the largest threshold whose melanoma sensitivity on the calibration part is >= the target (with
   ``--confidence C``: whose one-sided Clopper-Pearson lower bound at C is >= the target; the refusal rule then
   uses the same level) (:func:`moleport.metrics.threshold_for_sensitivity`), report sensitivity / specificity / AUC with 95 % bootstrap
   CIs (lesion-grouped when the source has lesion ids) at that and at the bundle's original threshold, on both parts;
4. copy the bundle to ``--out`` (the input is never modified), put the threshold in spec.json and manifest.json's
   ``spec``, add a ``site_calibration`` record to manifest.json, a site section to MODEL_CARD.md and the report
   (calibration.json, calibration.md) to the sealed ``documents``; re-run the parity harness on the new bundle and
   load it back through the verifying predictor.

The temperature is applied INSIDE every exported graph (the artifact outputs ``sigmoid(logit / T)``), so it cannot be
changed without re-exporting; it also cannot change an operating point (temperature scaling is monotone: the same
images fall either side of the matched threshold). The report says which temperature would fit the site, for
information; ``--refit-temperature`` is refused with that explanation.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moleport import metrics
from moleport.calibration import apply_temperature, fit_temperature, reliability
from moleport.evaluate.bootstrap import group_ids
from moleport.evaluate.dataset import EvalItem, labels_of, open_eval_items
from moleport.evaluate.errors import EvaluationError
from moleport.jsonio import read_json_object, sha256_file
from moleport.runtimes.bundle import Bundle, BundleError, load_bundle, verify

#: One-sided error level of the melanoma-count rule (a 95 % lower confidence bound).
ALPHA = 0.05


def refusal_rule(alpha: float = ALPHA) -> str:
    """The melanoma-count rule of :func:`min_melanomas`, in words."""
    return (f"melanomas needed n >= ln({alpha:g}) / ln(target): with fewer, even catching every melanoma leaves the "
            f"one-sided {1 - alpha:.0%} Clopper-Pearson lower bound on sensitivity ({alpha:g}^(1/n)) below the target")


class CalibrationError(ValueError):
    """Site calibration cannot run (bundle, data or options); the message names the file and the problem."""


@dataclass(frozen=True)
class SiteConfig:
    """Everything one ``moleport calibrate`` run needs."""

    bundle: Path
    data: Path
    out: Path
    target: float = 0.95
    check: Path | None = None  # a second labelled source to check on
    split_half: int | None = None  # seed of the lesion-grouped calibration / check split of ``data``
    artifact: str | None = None  # bundle-relative artifact path (default: the Android app's)
    site: str | None = None  # site name recorded in the bundle (default: the data folder's name)
    preset: str | None = None
    n_boot: int = 1000
    seed: int = 0
    force: bool = False
    parity: bool = True  # re-run the parity harness on the new bundle
    checkpoint: Path | None = None  # parity reference (default: the bundle's)
    split_manifest: Path | None = None  # parity images (default: the bundle's)
    latency_runs: int = 10
    threads: int = 2
    refit_temperature: bool = False
    confidence: float | None = None  # threshold for a Clopper-Pearson lower bound >= target (None: point rule)

    @property
    def alpha(self) -> float:
        """Error level of the refusal rule (and of the threshold's lower bound when ``confidence`` is set)."""
        return ALPHA if self.confidence is None else 1.0 - self.confidence


def min_melanomas(target: float, alpha: float = ALPHA) -> int:
    """Fewest melanomas (resampling units: lesions, else images) on which ``target`` sensitivity can be estimated.

    Rule: even when every one of ``n`` melanomas is caught, the exact (Clopper-Pearson) one-sided ``1 - alpha``
    lower confidence bound on sensitivity is ``alpha ** (1 / n)``. Below ``n = ln(alpha) / ln(target)`` that bound
    stays under the target whatever the threshold, i.e. the data cannot show the target is met (the "rule of three":
    59 melanomas for 0.95, 299 for 0.99, 29 for 0.90). It also guarantees ``n >= 1 / (1 - target)``, so at least one
    missed melanoma is resolvable at the chosen threshold.
    """
    if not 0.0 < target < 1.0:
        raise CalibrationError(f"target sensitivity must be strictly between 0 and 1, got {target}")
    return metrics.melanomas_needed(target, 1.0 - alpha)


def count_units(items: list[EvalItem]) -> dict[str, int]:
    """Images and resampling units (lesions, else images) per class."""
    groups, _ = group_ids([it.lesion_id for it in items], len(items))
    y = labels_of(items)
    return {"melanoma": int(y.sum()), "nevus": int(len(y) - y.sum()),
            "melanoma_units": int(len(np.unique(groups[y == 1]))), "nevus_units": int(len(np.unique(groups[y == 0])))}


def require_melanomas(items: list[EvalItem], target: float, where: str, alpha: float = ALPHA) -> dict[str, int]:
    """Refuse data on which ``target`` sensitivity cannot be estimated; return its counts."""
    c, need = count_units(items), min_melanomas(target, alpha)
    if c["melanoma_units"] < need:
        unit = "melanoma lesions" if c["melanoma_units"] != c["melanoma"] else "melanoma images"
        raise CalibrationError(
            f"{where}: too few melanomas to estimate sensitivity {target:g}: {c['melanoma_units']} {unit}, "
            f"{need} needed (even with every melanoma caught, the one-sided {1 - alpha:.0%} Clopper-Pearson lower "
            f"bound on sensitivity is {alpha:g}^(1/n), which reaches {target:g} only from n = {need}); "
            f"add {need - c['melanoma_units']} more or lower --target-sensitivity")
    if c["nevus"] < 1:
        raise CalibrationError(f"{where}: no nevus images, so specificity cannot be estimated")
    return c


def split_halves(items: list[EvalItem], seed: int) -> tuple[list[EvalItem], list[EvalItem]]:
    """Calibration and check halves: whole lesions (images without a lesion id on their own), stratified by
    diagnosis (a lesion with any melanoma image counts as melanoma), shuffled with ``seed``; the calibration half
    takes the odd one out."""
    groups, _ = group_ids([it.lesion_id for it in items], len(items))
    y = labels_of(items)
    units = np.unique(groups)
    unit_label = {int(u): int(y[groups == u].max()) for u in units}
    rng = np.random.default_rng(seed)
    to_cal: dict[int, bool] = {}
    for label in (1, 0):
        mine = [u for u in unit_label if unit_label[u] == label]
        for i, u in enumerate(rng.permutation(mine)):
            to_cal[int(u)] = i % 2 == 0
    cal = [it for it, g in zip(items, groups) if to_cal[int(g)]]
    chk = [it for it, g in zip(items, groups) if not to_cal[int(g)]]
    return cal, chk


def items_digest(items: list[EvalItem]) -> str:
    """sha256 of the sorted ``label<TAB>sha256-of-image`` lines: which labelled images an estimate rests on."""
    lines = sorted(f"{it.label}\t{sha256_file(it.path)}\n" for it in items)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def check_config(cfg: SiteConfig) -> None:
    """Refuse bad options before any image is read."""
    if not 0.0 < cfg.target < 1.0:
        raise CalibrationError(f"--target-sensitivity must be strictly between 0 and 1, got {cfg.target}")
    if cfg.confidence is not None and not 0.0 < cfg.confidence < 1.0:
        raise CalibrationError(f"--confidence must be strictly between 0 and 1, got {cfg.confidence}")
    if cfg.refit_temperature:
        raise CalibrationError(
            "--refit-temperature: the temperature is applied inside every exported graph (each artifact outputs "
            "sigmoid(logit / T) with the T of spec.json), so a new temperature needs a re-export from the checkpoint "
            "(`moleport evaluate CKPT --calibrate` writes such a spec); it cannot move the operating point anyway "
            "(temperature scaling is monotone). Calibrate the threshold alone; the report shows the temperature that "
            "would fit the site")
    if cfg.check is not None and cfg.split_half is not None:
        raise CalibrationError("--check and --split-half exclude each other: check on a second source, or split one")
    out, src = cfg.out.resolve(), cfg.bundle.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise CalibrationError(f"{cfg.out}: the output must be a new folder outside the input bundle {cfg.bundle} "
                               f"(the input is never modified)")
    if cfg.out.exists() and not cfg.force:
        raise CalibrationError(f"{cfg.out}: already exists; pass --force to replace it")


def android_ship(bundle: Bundle) -> dict[str, Any]:
    """parity.json's ship decision for the Android app (empty without parity.json)."""
    if not (bundle.root / "parity.json").is_file():
        return {}
    ship = read_json_object(bundle.root / "parity.json", CalibrationError, "parity report").get("ship") or {}
    return ship.get("android") or {}


def android_default(bundle: Bundle) -> str | None:
    return android_ship(bundle).get("default")


def open_bundle(cfg: SiteConfig) -> tuple[Bundle, str]:
    """The verified input bundle and the artifact to calibrate (bundle-relative path)."""
    try:
        bundle = verify(load_bundle(cfg.bundle), parity_seal=True)
    except BundleError as exc:
        raise CalibrationError(f"{cfg.bundle}: refusing the bundle: {exc}") from exc
    listed = {f.rel for f in bundle.files}
    if cfg.artifact is not None:
        if cfg.artifact not in listed:
            raise CalibrationError(f"{cfg.bundle}/manifest.json: --artifact {cfg.artifact!r} is not listed "
                                   f"(it lists {sorted(listed)})")
        return bundle, cfg.artifact
    android = android_ship(bundle)
    rel = android.get("default") or android.get("fp32")
    if rel is None:
        raise CalibrationError(f"{bundle.root}/parity.json: no artifact ships to the Android app "
                               f"({android.get('why', 'no parity.json or no ship decision')}); name one with "
                               f"--artifact (listed: {sorted(listed)})")
    return bundle, rel


def site_data(cfg: SiteConfig) -> tuple[list[EvalItem], list[EvalItem] | None, str]:
    """(calibration items, check items or None, how the check part was made)."""
    try:
        items = open_eval_items(cfg.data, preset=cfg.preset)
        if cfg.split_half is not None:
            cal, chk = split_halves(items, cfg.split_half)
            return cal, chk, f"lesion-grouped half of {cfg.data} (seed {cfg.split_half}, stratified by diagnosis)"
        if cfg.check is not None:
            return items, open_eval_items(cfg.check, preset=cfg.preset), f"second source {cfg.check}"
    except EvaluationError as exc:
        raise CalibrationError(str(exc)) from exc
    return items, None, "none (give --split-half SEED or --check SOURCE to measure on held-out images)"


def measure(items: list[EvalItem], p: np.ndarray, thresholds: dict[str, float], n_boot: int,
            seed: int) -> dict[str, Any]:
    """AUC, sensitivity and specificity with 95 % bootstrap CIs at each named threshold."""
    from moleport.evaluate.evaluation import summarize

    keys = ("n", "counts", "n_resampling_units", "threshold", "auc", "auc_ci", "sensitivity", "sensitivity_ci",
            "specificity", "specificity_ci", "ece", "bootstrap")
    y, lesions = labels_of(items), [it.lesion_id for it in items]
    out = {}
    for name, thr in thresholds.items():
        res = summarize(y, p, thr, lesions, n_boot, seed)
        out[name] = {k: res[k] for k in keys}
        out[name]["confusion_matrix"] = res["metrics"]["confusion_matrix"]
    return out


def temperature_note(y: np.ndarray, p: np.ndarray, spec_temperature: float) -> dict[str, Any]:
    """The temperature that would fit the site (information only: it lives in the graph)."""
    fit = fit_temperature(y, p)
    at_bound = not 0.051 < fit["temperature"] < 19.9  # fit_temperature searches T in [0.05, 20]
    return {"fit_at_search_bound": at_bound,"spec_temperature": float(spec_temperature), "site_fit_factor": fit["temperature"],
            "would_be_temperature": float(spec_temperature * fit["temperature"]),
            "ece_now": reliability(y, p)["ece"], "ece_if_refit": reliability(y, apply_temperature(p, fit["temperature"]))["ece"],
            "applied": False, "why": "the temperature is applied inside the exported graphs; changing it needs a "
                                     "re-export, and it cannot move the operating point (monotone)"}


def predict_site(bundle: Bundle, rel: str, parts: dict[str, list[EvalItem]], threads: int):
    """The verifying predictor of ``rel`` and its P(melanoma) on each part."""
    from moleport.evaluate.evaluation import predict_with
    from moleport.evaluate.predictors import load_predictor

    try:
        pred = load_predictor(bundle.root / rel, threads=threads)
        return pred, {name: np.asarray(predict_with(pred, items)) for name, items in parts.items()}
    except EvaluationError as exc:
        raise CalibrationError(str(exc)) from exc


def relative_to_source(path: str, source: Path) -> str:
    """An image path relative to its data source folder (as given when outside it)."""
    base = Path(source).resolve()
    base = base.parent if base.is_file() else base
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def check_warnings(target: float, counts: dict[str, Any], results: dict[str, Any],
                   alpha: float = ALPHA) -> list[str]:
    """What the check part says against the calibration: too few melanomas, or the target not reached there."""
    need, out = min_melanomas(target, alpha), []
    if "check" in counts and counts["check"]["melanoma_units"] < need:
        out.append(f"check part: {counts['check']['melanoma_units']} melanoma units, fewer than the {need} "
                   f"needed to show sensitivity {target:g}; its sensitivity CI is wide")
    held = results.get("check", {}).get("calibrated")
    if held is not None and held["sensitivity"] < target:
        lo, hi = held["sensitivity_ci"]
        out.append(f"check part: sensitivity at the calibrated threshold is {held['sensitivity']:.3f} "
                   f"[{lo:.3f}, {hi:.3f}], below the target {target:g}: the threshold does not carry over "
                   f"fully to held-out images of this site")
    return out


def estimate(cfg: SiteConfig, bundle: Bundle, rel: str) -> dict[str, Any]:
    """Predict the site, choose the threshold on the calibration part, measure both parts at both thresholds."""
    cal, chk, how = site_data(cfg)
    counts = {"calibration": require_melanomas(cal, cfg.target, f"{cfg.data} (calibration part)", cfg.alpha)}
    parts = {"calibration": cal, **({"check": chk} if chk is not None else {})}
    if chk is not None:
        counts["check"] = count_units(chk)
    pred, p = predict_site(bundle, rel, parts, cfg.threads)
    try:
        op = metrics.threshold_for_sensitivity(labels_of(cal), p["calibration"], cfg.target, cfg.confidence)
    except ValueError as exc:  # lesion units passed the count but the images of this rule do not
        raise CalibrationError(f"{cfg.data} (calibration part): {exc}") from None
    before = float(bundle.spec.threshold)
    thresholds = {"original": before, "calibrated": float(op["threshold"])}
    results = {name: measure(items, p[name], thresholds, cfg.n_boot, cfg.seed) for name, items in parts.items()}
    need = min_melanomas(cfg.target, cfg.alpha)
    warnings = check_warnings(cfg.target, counts, results, cfg.alpha)
    return {"site": cfg.site or Path(cfg.data).resolve().name, "target_sensitivity": cfg.target,
            "confidence": cfg.confidence, "calibration_lower_bound": op.get("sensitivity_lower_bound"),
            "threshold_before": before, "threshold_after": thresholds["calibrated"], "chosen_on": "calibration",
            "artifact": rel, "artifact_kind": pred.kind, "min_melanomas": need, "rule": refusal_rule(cfg.alpha),
            "check_part": how, "counts": counts, "results": results,
            "temperature": temperature_note(labels_of(cal), p["calibration"], bundle.spec.temperature),
            "data": {"source": str(Path(cfg.data).resolve()), "preset": cfg.preset,
                     "check_source": str(Path(cfg.check).resolve()) if cfg.check else None,
                     "split_half_seed": cfg.split_half, "calibration_sha256": items_digest(cal),
                     "check_sha256": items_digest(chk) if chk is not None else None,
                     "calibration_files": [relative_to_source(it.path, cfg.data) for it in cal]},
            "warnings": warnings}


def parity_plan(cfg: SiteConfig, bundle: Bundle) -> tuple[Path | None, Path | None]:
    """The parity reference checkpoint and split manifest for the new bundle; refuse up front when they are absent
    (unless ``--skip-parity``), before any image is predicted or any file written."""
    ckpt = cfg.checkpoint or bundle.checkpoint
    split = cfg.split_manifest or bundle.split_manifest
    if not cfg.parity:
        return ckpt, split
    missing = [f"{what} {p if p else '(not named in manifest.json)'}" for what, p in
               (("reference checkpoint", ckpt), ("split manifest", split)) if p is None or not Path(p).exists()]
    if missing:
        raise CalibrationError(f"{bundle.root}/manifest.json: the parity harness cannot re-judge the new bundle: "
                               f"{' and '.join(missing)} not found; pass --ckpt / --split-manifest, or --skip-parity "
                               f"to keep the input's parity verdicts (judged at threshold {bundle.spec.threshold:g})")
    return ckpt, split


def parity_verdicts(root: Path) -> dict[str, bool]:
    """artifact -> passed, from parity.json (empty without one)."""
    if not (root / "parity.json").is_file():
        return {}
    arts = read_json_object(root / "parity.json", CalibrationError, "parity report").get("artifacts") or {}
    return {a: bool(v.get("passed")) for a, v in arts.items()}


def rejudge(cfg: SiteConfig, out: Path, ckpt: Path | None, split: Path | None, rel: str,
            before: dict[str, bool]) -> dict[str, Any]:
    """Run the parity harness on the new bundle (at its new threshold); a summary of the verdict
    (:func:`parity_outcome`)."""
    from moleport.data.manifest import ManifestError
    from moleport.parity.harness import ParityError, run_parity

    try:
        payload = run_parity(out, split_manifest=split, checkpoint=ckpt, latency_runs=cfg.latency_runs,
                             threads=cfg.threads)
    except (ParityError, BundleError, ManifestError) as exc:
        raise CalibrationError(f"{out}: parity could not run on the calibrated bundle ({exc}); its parity.json still "
                               f"seals the input's manifest, so consumers refuse it") from exc
    return parity_outcome(payload, before, rel)


def parity_outcome(payload: dict[str, Any], before: dict[str, bool], rel: str) -> dict[str, Any]:
    """The re-run's verdict against the input's (``before``): ``ok`` when the calibrated artifact ``rel`` passes and
    no fp32/fp16 artifact that passed before fails now (``regressed``). An optional w8/int8 artifact that passed
    before but fails at the site threshold is ``newly_rejected``: not shipped, reported, not fatal (as in make
    export)."""
    from moleport.parity.ship import REQUIRED_PRECISIONS

    android = (payload.get("ship") or {}).get("android") or {}
    after = {a: bool(v.get("passed")) for a, v in (payload.get("artifacts") or {}).items()}
    precision = {a: v.get("precision") for a, v in (payload.get("artifacts") or {}).items()}
    newly = sorted(a for a, ok in after.items() if before.get(a) and not ok)
    regressed = [a for a in newly if precision.get(a) in REQUIRED_PRECISIONS]  # fatal, as in make export
    rejected = [a for a in newly if a not in regressed]  # optional w8/int8: rejected at this threshold, not shipped
    return {"rerun": True, "passed": bool(payload["passed"]), "violations": list(payload["violations"]),
            "artifacts": after, "artifacts_before": before, "regressed": regressed, "newly_rejected": rejected,
            "ok": after.get(rel, False) and not regressed,
            "split": payload.get("split"), "n": payload.get("n"), "threshold": payload.get("threshold"),
            "android_default": android.get("default"), "report": "parity.json"}


def verify_output(out: Path, rel: str) -> None:
    """The written bundle must pass the same checks as any consumer's: full verification and the predictor's."""
    from moleport.evaluate.predictors import load_predictor

    try:
        verify(load_bundle(out), parity_seal=True)
        load_predictor(out / rel, threads=1)
    except (BundleError, EvaluationError) as exc:
        raise CalibrationError(f"{out}: the calibrated bundle does not verify: {exc}") from exc


def calibrate_site(cfg: SiteConfig) -> dict[str, Any]:
    """Calibrate ``cfg.bundle`` on ``cfg.data``; write the new bundle to ``cfg.out``; return the report dict
    (``markdown`` holds calibration.md)."""
    from moleport.calibrate.write import WriteError, write_bundle, write_report

    check_config(cfg)
    bundle, rel = open_bundle(cfg)
    ckpt, split = parity_plan(cfg, bundle)
    ship_before = android_default(bundle)
    est = estimate(cfg, bundle, rel)
    est.update(created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               input_bundle=str(bundle.root), out=str(Path(cfg.out).resolve()), ship_before=ship_before)
    est["parity"] = None if cfg.parity else {"rerun": False, "why": "--skip-parity",
                                             "judged_threshold": float(bundle.spec.threshold)}
    overrides = {"checkpoint": str(Path(ckpt).resolve()) if cfg.checkpoint else None,
                 "split_manifest": str(Path(split).resolve()) if cfg.split_manifest else None}
    try:
        out = write_bundle(bundle, Path(cfg.out), est, overrides, keep_parity=not cfg.parity)
        if cfg.parity:
            est["parity"] = rejudge(cfg, out, ckpt, split, rel, parity_verdicts(bundle.root))
            if est["parity"]["android_default"] != est["ship_before"]:
                est["warnings"].append(f"after parity the Android app ships {est['parity']['android_default']!r}, "
                                       f"the input bundle shipped {est['ship_before']!r}")
        md = write_report(out, est)
    except (WriteError, BundleError) as exc:
        raise CalibrationError(str(exc)) from exc
    verify_output(out, rel)
    return {**est, "markdown": md}
