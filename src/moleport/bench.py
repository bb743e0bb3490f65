"""`moleport bench` / `make bench`: measured speed and size numbers, printed as tables.

Each stage owns its measurements (``moleport.<stage>.bench``); this module runs the ones
asked for and prints them. Numbers are measured on the device found (CPU here; CUDA when
available) and are never asserted on in tests.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

from moleport.paths import artifacts_dir
from moleport.spec import TTA_RULES


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:,.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _flatten(result: dict[str, Any]) -> list[dict[str, Any]]:
    """{"name": {metrics}, ...} -> one row per name (other shapes pass through as one row)."""
    if result and all(isinstance(v, dict) for v in result.values()):
        return [dict(step=k, **v) for k, v in result.items()]
    return [result]


def _machine() -> dict[str, Any]:
    import os

    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"python": platform.python_version(), "torch": torch.__version__, "device": dev,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def run_bench(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {"machine": _machine()}
    print("machine:", json.dumps(results["machine"]))
    if "data" in args.only:
        from moleport.data.bench import bench_decode, bench_synth

        results["data"] = [dict(step="synth", **bench_synth(n=args.synth_n))] + _flatten(bench_decode())
        print("\n## data\n" + _table(results["data"]))
    if "train" in args.only:
        results["train"] = _bench_train_threads(args)
        print("\n## training throughput\n" + _table(results["train"]))
        from moleport.train.bench import projected_grid_hours

        print(f"projected time of the paper grid (archs above, this device): {projected_grid_hours(results['train']):.1f} h")
    ckpt = manifest = None
    if {"export", "tta"} & set(args.only):  # only these sections need a checkpoint and its split manifest
        ckpt = args.ckpt or _latest_checkpoint()
        manifest = args.manifest or (split_manifest_of(ckpt) if ckpt is not None else None)
    for section in ("export", "tta"):
        if section not in args.only:
            continue
        if ckpt is None or manifest is None:
            print(f"\n## {section}\n(skipped: no checkpoint and split manifest (the int8 variants calibrate on "
                  f"its train split); run `make export` first or pass --ckpt and --manifest)")
            continue
        from moleport.export.bench import bench_export, bench_tta

        if section == "export":
            results["export"] = bench_export(ckpt, manifest, measure=artifact_latencies)
            print("\n## export time, size and single-thread latency per format (one run, side by side)\n"
                  + _table(results["export"]))
        else:
            results["tta"] = bench_tta(ckpt, manifest, rules=args.tta_rules, measure=artifact_latencies)
            print("\n## in-graph test-time augmentation: single-thread latency of the phone formats, each rule "
                  "against none (one run, side by side)\n" + _table(results["tta"]))
    out = artifacts_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwritten: {out}")
    return 0


def artifact_latencies(bundle_dir, runs: int = 20) -> dict[str, dict[str, Any]]:
    """Single-thread median latency (ms) of every artifact in its runtime (parity's runners, in this process,
    one after the other), with the ratio of size and speed against the same format's fp32 file."""
    import numpy as np

    from moleport.runtimes.bundle import load_bundle
    from moleport.runtimes import discover

    bundle = load_bundle(bundle_dir)
    image = np.random.default_rng(0).integers(0, 256, (bundle.spec.input_size,) * 2 + (3,), dtype=np.uint8)
    out: dict[str, dict[str, Any]] = {}
    for runner in discover(bundle, ["onnxruntime", "litert", "executorch", "coreml"], threads=1).runners:
        try:
            out[runner.artifact.rel] = {"runtime": runner.runtime, "latency_ms": round(runner.latency_ms(image, runs=runs), 2)}
        except Exception as exc:  # noqa: BLE001 — a row that cannot run says so
            out[runner.artifact.rel] = {"runtime": runner.runtime, "latency_ms": None, "error": str(exc)[:200]}
        finally:
            runner.close()
    for f in bundle.files:
        base = next((g for g in bundle.files if g.format == f.format and g.precision == "fp32"), None)
        row, ref = out.get(f.rel), out.get(base.rel) if base else None
        if row and ref and row.get("latency_ms") and ref.get("latency_ms"):
            row["size_vs_fp32"] = round(f.bytes / base.bytes, 3)
            row["speedup_vs_fp32"] = round(ref["latency_ms"] / row["latency_ms"], 2)
    return out


def _bench_train_threads(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Training rows, fp32 and bf16 side by side, with ``--threads`` set only for the measurement."""
    from moleport.procstate import torch_threads
    from moleport.train.bench import bench_train

    with torch_threads(args.threads):
        return bench_train(args.archs, batch_sizes=tuple(args.batch_sizes), steps=args.steps,
                           precisions=args.precisions)


def split_manifest_of(ckpt: Path) -> Path | None:
    """The split manifest a checkpoint was trained on, found by its sha256 among the manifests under artifacts/
    (the pipeline's ``splits/<name>.json``, a run folder's ``manifest-*.json``); None when none matches."""
    from moleport.data.manifest import ManifestError, load_manifest
    from moleport.models.checkpoint import CheckpointError, load_checkpoint

    try:
        want = load_checkpoint(ckpt).meta.get("manifest_sha256")
    except CheckpointError:
        return None
    root = artifacts_dir()
    for cand in sorted([*root.glob("splits/*.json"), *root.glob("train/**/manifest*.json")]):
        try:
            if want and load_manifest(cand).sha256 == want:
                return cand
        except (ManifestError, OSError, ValueError):
            continue
    return None


def _latest_checkpoint() -> Path | None:
    cands = sorted((artifacts_dir() / "train").glob("*/checkpoint.pt"), key=lambda p: p.stat().st_mtime)
    return cands[-1] if cands else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="print measured speed/size numbers (make bench)")
    p.add_argument("--only", nargs="+", default=["data", "train", "export", "tta"],
                   choices=["data", "train", "export", "tta"])
    p.add_argument("--archs", nargs="+", default=["mobilenet", "mobilenet_v2", "resnet50", "vgg16", "vgg19", "alexnet"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 256])
    p.add_argument("--steps", type=int, default=3, help="timed training steps per (arch, batch)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                   help="forward autocast per training row (bf16 on CPU only where the processor has it)")
    p.add_argument("--threads", type=int, help="torch threads for the training rows (default: torch's)")
    p.add_argument("--synth-n", type=int, default=200)
    p.add_argument("--tta-rules", nargs="+", default=["flips4", "dihedral8"], choices=list(TTA_RULES),
                   help="in-graph test-time augmentation rules the tta section exports and times against none")
    p.add_argument("--ckpt", type=Path)
    p.add_argument("--manifest", type=Path)
    p.set_defaults(func=run_bench)
