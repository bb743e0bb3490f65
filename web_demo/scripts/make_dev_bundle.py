"""A small stand-in export bundle for developing the web demo before a real one exists.

NOT a trained model: a tiny random-weight CNN with the bundle's contract (float32 NHWC
[1,224,224,3] raw RGB 0..255 in, normalisation inside the graph, [P(nevus), P(melanoma)] out),
converted with TensorFlow's TFLite converter to fp32 and full-integer int8 (int8 input/output).
The real test (``web_test.sh artifacts/export/<name>``) runs against `make export`'s bundle.

Usage: .venv/bin/python web_demo/scripts/make_dev_bundle.py OUT_DIR
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_model(spec):
    import tensorflow as tf

    tf.random.set_seed(0)
    mean = np.array(spec.mean, np.float32)
    std = np.array(spec.std, np.float32)
    inp = tf.keras.Input((spec.input_size, spec.input_size, 3), batch_size=1, name="pixels")
    x = tf.keras.layers.Rescaling(1.0 / (255.0 * std), offset=-mean / std)(inp)
    for ch in (8, 16, 32):
        x = tf.keras.layers.Conv2D(ch, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    logit = tf.keras.layers.Dense(1)(x)
    p = tf.keras.layers.Activation("sigmoid")(logit)
    out = tf.keras.layers.Concatenate(name="probabilities")([1.0 - p, p])
    return tf.keras.Model(inp, out)


def convert(model, int8: bool, calib: np.ndarray) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([c[None]] for c in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def io_details(blob: bytes) -> tuple[dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=blob)
    out = []
    for d in (interp.get_input_details()[0], interp.get_output_details()[0]):
        scale, zero = d["quantization"]
        out.append({"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]],
                    "quantization": {"scale": float(scale), "zero_point": int(zero)}})
    return out[0], out[1]


def main() -> int:
    from moleport.spec import ModelSpec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    spec = ModelSpec(architecture="dev-tiny-cnn (random weights, NOT a classifier)", threshold=0.5)
    model = build_model(spec)
    calib = np.random.default_rng(0).integers(0, 256, (16, 224, 224, 3)).astype(np.float32)
    args.out.mkdir(parents=True, exist_ok=True)
    files = []
    for precision, int8 in (("fp32", False), ("int8", True)):
        blob = convert(model, int8, calib)
        name = f"dev_{precision}.tflite"
        (args.out / name).write_bytes(blob)
        inp, outp = io_details(blob)
        files.append({"path": name, "format": "tflite", "precision": precision,
                      "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob), "input": inp, "output": outp})
    spec.save(args.out / "spec.json")
    (args.out / "labels.txt").write_text("\n".join(spec.labels) + "\n", encoding="utf-8")
    (args.out / "manifest.json").write_text(json.dumps({"name": args.out.name, "dev_stand_in": True, "files": files},
                                                       indent=2) + "\n", encoding="utf-8")
    print(f"dev bundle -> {args.out} ({', '.join(f['path'] for f in files)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
