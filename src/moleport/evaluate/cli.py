"""``moleport evaluate``: clinical evaluation of a checkpoint or exported artifact (with CIs).

Two modes:

- ``moleport evaluate MODEL --data SOURCE --out DIR [--threshold T]``: one data set at the model's
  own threshold (``spec.threshold`` unless ``--threshold``);
- ``moleport evaluate MODEL --data MANIFEST.json --target-sensitivity 0.95 [--sensitivity-confidence 0.95]
  [--external SRC ...] [--calibrate] --out DIR``: the operating point — the threshold is chosen on the manifest's
  VAL split for the target melanoma sensitivity (with a confidence: for a lower confidence bound at the target)
  and reported on test and on each external source.
"""
from __future__ import annotations

import argparse
import sys

from moleport.argtypes import positive_int, probability
from moleport.evaluate.errors import EvaluationError
from moleport.spec import TTA_RULES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="AUC / sensitivity / specificity with bootstrap CIs, ROC, calibration, reports",
        description="Evaluate a checkpoint (.pt) or exported artifact (.tflite/.onnx/.pte/.mlpackage, run in its "
                    "own runtime with the bundle's spec.json) on a data source or a split manifest.")
    p.add_argument("model", nargs="+", help="checkpoint .pt or artifact inside an export bundle; two or more: "
                                           "their logit average (an ensemble; needs --target-sensitivity or "
                                           "--threshold)")
    p.add_argument("--data", required=True, help="data source folder (CSV/ImageFolder/preset) or split manifest .json")
    p.add_argument("--out", required=True, help="output folder (evaluation.json, roc.png, reliability.png, report.*)")
    p.add_argument("--preset", default=None, help="data source preset (e.g. paper)")
    p.add_argument("--split", default=None, choices=("train", "val", "test"),
                   help="split of a manifest .json (default test)")
    p.add_argument("--threshold", type=probability, default=None, help="threshold on P(melanoma) (default: spec.threshold)")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap draws for the 95%% CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--threads", type=positive_int, default=2, help="inference threads")
    p.add_argument("--tta", default=None, choices=TTA_RULES,
                   help="test-time augmentation outside the model: average its logits over the flips / quarter "
                        "turns of each image (flips2: 2 views, flips4: 4, dihedral8: 8)")
    op = p.add_argument_group("operating point (needs --data MANIFEST.json)")
    op.add_argument("--target-sensitivity", type=probability, default=None,
                    help="choose the threshold on the manifest's val split for this melanoma sensitivity (e.g. 0.95)")
    op.add_argument("--sensitivity-confidence", type=probability, default=None, metavar="C",
                    help="stricter threshold: the one-sided Clopper-Pearson lower bound on val sensitivity, at "
                         "confidence C (e.g. 0.95), must reach the target")
    op.add_argument("--external", nargs="*", default=[], help="external data sources to report at that threshold")
    op.add_argument("--calibrate", action="store_true",
                    help="also fit temperature scaling on val; spec_with_threshold.json then carries it (exports reproduce it)")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    if len(args.model) > 1 and args.target_sensitivity is None and args.threshold is None:
        raise EvaluationError(f"an ensemble of {len(args.model)} models has no threshold of its own: pass "
                              f"--target-sensitivity (chosen on val) or --threshold")
    if args.target_sensitivity is None:
        if args.external or args.calibrate or args.sensitivity_confidence is not None:
            raise EvaluationError("--external, --calibrate and --sensitivity-confidence need --target-sensitivity "
                                  "(operating-point mode)")
        return
    if args.threshold is not None:
        raise EvaluationError("--threshold and --target-sensitivity exclude each other")
    if not str(args.data).lower().endswith(".json"):
        raise EvaluationError("--target-sensitivity chooses the threshold on a manifest's val split: "
                              "--data must be a split manifest .json")
    if args.split not in (None, "test"):
        raise EvaluationError("operating-point mode always picks on val and reports on test; drop --split")


def run(args: argparse.Namespace) -> int:
    from moleport.evaluate.evaluation import evaluate_model
    from moleport.evaluate.operating_point import operating_point_report
    from moleport.evaluate.report import summary_rows

    try:
        _check_args(args)
        if args.target_sensitivity is not None:
            rep = operating_point_report(args.model, args.data, args.out, externals=args.external,
                                         target=args.target_sensitivity, calibrate=args.calibrate,
                                         confidence=args.sensitivity_confidence,
                                         n_boot=args.bootstrap, seed=args.seed, threads=args.threads,
                                         tta=args.tta)
            print(rep["markdown"])
            print(f"wrote {args.out}/operating_point.json, operating_point.md, spec_with_threshold.json "
                  f"and one evaluation folder per data set")
            return 0
        result = evaluate_model(args.model, args.data, args.out, threshold=args.threshold, n_boot=args.bootstrap,
                                seed=args.seed, preset=args.preset, split=args.split, threads=args.threads,
                                tta=args.tta)
    except (EvaluationError, ValueError) as exc:
        print(f"moleport evaluate: error: {exc}", file=sys.stderr)
        return 2
    for k, v in summary_rows(result):
        print(f"{k:55s} {v}")
    print(f"wrote {args.out}/evaluation.json, report.md, report.html, roc.png, reliability.png")
    return 0
