"""``moleport calibrate BUNDLE --data SITE --target-sensitivity 0.95 --split-half 0 --out DIR``: site calibration.

Chooses the threshold for the target melanoma sensitivity on a site's own labelled images (run through the bundle's
shipped artifact in its own runtime), reports sensitivity / specificity with 95 % bootstrap CIs and the counts they
rest on, on the calibration part and on a held-out check part beside the bundle's original threshold, and writes a
NEW bundle whose spec.json carries the site's threshold, re-sealed and re-judged by the parity harness.
Exit 0: written, and parity passes the calibrated artifact and everything that passed in the input (or parity was
skipped); 1: written but parity failed there; 2: refused (nothing written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moleport.argtypes import non_negative_int, positive_int, probability


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="choose a bundle's threshold on a site's own labelled images",
                              description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1])
    p.add_argument("bundle", help="export bundle folder (artifacts/export/<name>); never modified")
    p.add_argument("--data", required=True, help="the site's labelled images (ImageFolder / CSV / preset source)")
    p.add_argument("--target-sensitivity", type=probability, default=0.95, help="melanoma sensitivity (default 0.95)")
    p.add_argument("--confidence", type=probability, default=None, metavar="C",
                   help="stricter threshold: the one-sided Clopper-Pearson lower bound on the calibration part's "
                        "sensitivity, at confidence C (e.g. 0.95), must reach the target")
    p.add_argument("--out", required=True, help="folder of the new, calibrated bundle")
    held = p.add_mutually_exclusive_group()
    held.add_argument("--split-half", type=non_negative_int, default=None, metavar="SEED",
                      help="split --data into calibration and check halves (lesion-grouped, per diagnosis)")
    held.add_argument("--check", default=None, help="a second labelled source to check the threshold on")
    p.add_argument("--artifact", default=None,
                   help="bundle-relative artifact to calibrate (default: parity.json's Android default)")
    p.add_argument("--site", default=None, help="site name recorded in the bundle (default: the data folder's name)")
    p.add_argument("--preset", default=None, help="data source preset (e.g. paper)")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap draws for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--force", action="store_true", help="replace --out when it exists")
    p.add_argument("--skip-parity", action="store_true",
                   help="do not re-run parity (keep the input's verdicts); for bundles whose parity inputs are gone")
    p.add_argument("--ckpt", default=None, help="parity reference checkpoint (default: manifest.json's)")
    p.add_argument("--split-manifest", default=None, help="parity split manifest (default: manifest.json's)")
    p.add_argument("--latency-runs", type=non_negative_int, default=10, help="parity latency runs per row")
    p.add_argument("--threads", type=positive_int, default=2, help="inference threads")
    p.add_argument("--refit-temperature", action="store_true",
                   help="refused: the temperature lives inside the exported graphs (see the message)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from moleport.calibrate.site import SiteConfig

    opt = lambda v: Path(v) if v else None  # noqa: E731
    return SiteConfig(bundle=Path(args.bundle), data=Path(args.data), out=Path(args.out),
                      target=args.target_sensitivity, check=opt(args.check), split_half=args.split_half,
                      artifact=args.artifact, site=args.site, preset=args.preset, n_boot=args.bootstrap,
                      seed=args.seed, force=args.force, parity=not args.skip_parity, checkpoint=opt(args.ckpt),
                      split_manifest=opt(args.split_manifest), latency_runs=args.latency_runs, threads=args.threads,
                      refit_temperature=args.refit_temperature, confidence=args.confidence)


def run(args: argparse.Namespace) -> int:
    from moleport.calibrate.site import CalibrationError, calibrate_site

    try:
        rep = calibrate_site(config_from_args(args))
    except CalibrationError as exc:
        print(f"moleport calibrate: error: {exc}", file=sys.stderr)
        return 2
    print(rep["markdown"])
    par = rep.get("parity") or {}
    if par.get("rerun") and not par.get("ok"):
        print(f"moleport calibrate: parity FAILED on {args.out} for {rep['artifact']} or for fp32/fp16 artifacts that "
              f"passed in the input bundle ({par.get('regressed')}):", file=sys.stderr)
        for v in par.get("violations", []):
            print(f"  - {v}", file=sys.stderr)
        return 1
    if par.get("rerun") and not par.get("passed"):
        newly = par.get("newly_rejected") or []
        still = sorted(a for a, ok in par["artifacts"].items() if not ok and a not in newly)
        if still:
            print(f"moleport calibrate: note: parity still rejects {still} (rejected in the input bundle too; "
                  f"they do not ship)", file=sys.stderr)
        if newly:
            print(f"moleport calibrate: REJECTED at the site threshold (optional precisions, no longer shipped): "
                  f"{newly}", file=sys.stderr)
    print(f"wrote {args.out} (spec.json threshold {rep['threshold_after']:.4f}; calibration.json, calibration.md)")
    return 0
