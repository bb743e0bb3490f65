"""`moleport predict MODEL IMAGE...`: P(melanoma) and the risk band for image files.

MODEL is a checkpoint (``.pt``) or an exported artifact (``.tflite``, ``.onnx``, ``.pte``,
``.mlpackage`` inside its bundle); artifacts run in their own runtime. Images go through the
canonical preprocessing. Not a diagnosis: decision support for a person and a clinician.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from moleport.argtypes import positive_int, probability

NOTICE = ("Not a diagnosis. Any changing, new or worrying mole should be seen by a dermatologist, "
          "whatever this tool says.")


def risk_band(p: float, threshold: float) -> str:
    """The same bands as the apps: low below t/2, borderline up to t, high at or above t."""
    if p >= threshold:
        return "high"
    return "borderline" if p >= threshold / 2 else "low"


def run(args: argparse.Namespace) -> int:
    from moleport.evaluate.errors import EvaluationError
    from moleport.evaluate.predictors import load_predictor
    from moleport.preprocess import ImageError, load_image

    try:
        pred = load_predictor(args.model, threads=args.threads)
        x = np.stack([load_image(f, pred.spec.input_size) for f in args.images])
        p = pred.predict(x)
    except (EvaluationError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    thr = pred.spec.threshold if args.threshold is None else args.threshold
    rows = [{"image": str(f), "p_melanoma": float(v), "threshold": thr, "band": risk_band(float(v), thr)}
            for f, v in zip(args.images, p)]
    if args.json:
        print(json.dumps({"model": str(args.model), "runtime": pred.kind, "results": rows}, indent=1))
    else:
        for r in rows:
            print(f"{r['image']}: P(melanoma) = {r['p_melanoma']:.4f}  ->  {r['band']} (threshold {thr:.4f})")
        print(NOTICE)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="P(melanoma) for image files with a checkpoint or exported artifact")
    p.add_argument("model", help="checkpoint .pt or artifact (.tflite/.onnx/.pte/.mlpackage in its bundle)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--threshold", type=probability, help="override the spec's threshold (strictly between 0 and 1)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
