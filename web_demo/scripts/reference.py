"""Reference probabilities for the browser test: the Python LiteRT interpreter (ai_edge_litert)
on the golden fixture's canonical tensors, for each TFLite file of a bundle.

Usage: python web_demo/scripts/reference.py --bundle BUNDLE_DIR --golden FIXTURE_DIR --out reference.json
Writes {"threshold": t, "melanoma_index": i, "models": {precision: {"path": ..., "probabilities": {name: [p0, p1]}}}}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def run(model: Path, tensors: dict[str, np.ndarray]) -> dict[str, list[float]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    result = {}
    for name, t in tensors.items():
        x = t[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.floor(x / scale + 0.5) + zero, info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float64).reshape(-1)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        result[name] = [float(v) for v in y]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--golden", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from moleport.spec import ModelSpec

    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    spec = ModelSpec.load(args.bundle / "spec.json")
    index = json.loads((args.golden / "index.json").read_text(encoding="utf-8"))
    n = index["input_size"]
    tensors = {e["name"]: np.frombuffer((args.golden / e["tensor_file"]).read_bytes(), np.uint8).reshape(n, n, 3)
               for e in index["images"]}
    models = {}
    for f in manifest.get("files", []):
        if f.get("format") == "tflite":
            models[f["precision"]] = {"path": f["path"], "probabilities": run(args.bundle / f["path"], tensors)}
    if "fp32" not in models:
        print(f"reference: {args.bundle}/manifest.json lists no fp32 tflite", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps({"threshold": spec.threshold, "melanoma_index": spec.melanoma_index,
                                    "models": models}, indent=2) + "\n", encoding="utf-8")
    print(f"reference: {len(tensors)} images x {sorted(models)} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
