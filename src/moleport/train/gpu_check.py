"""The prepared GPU check (``make gpu-check`` / ``scripts/gpu_check.sh``): training bench, then the whole Table 2
grid on ``../shared/data/ham10000-mel-nv``, timings and the grid table written to ``<out>/gpu_check.md``.

Target: the grid in <= 5 minutes on one H200 with the data pipeline never the bottleneck; per run the report
gives the training img/s next to the bench's pure-step img/s of that architecture and batch (``pipeline
efficiency`` near 1 = the resident-data pipeline keeps up) and, where NVML is importable, the sampled GPU-busy
fraction. ``--tiny`` runs the same code on CPU in seconds (synthetic data, MobileNet runs only) for CI.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import torch

from moleport.paths import artifacts_dir, shared_path

TARGET_S = 300.0


class _BusySampler:
    """Mean of torch.cuda.utilization() sampled every 0.5 s (None without CUDA/NVML)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no NVML: leave the fraction unmeasured
                return

    def __enter__(self) -> "_BusySampler":
        if torch.cuda.is_available():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    @property
    def busy_fraction(self) -> float | None:
        return round(sum(self.samples) / len(self.samples) / 100.0, 3) if self.samples else None


def _tiny_data(out: Path) -> Path:
    from moleport.data.synth import generate

    return generate(out / "tiny-data", n=40, seed=0, size=64).parent


def _configs(tiny: bool, out: Path) -> list:
    from moleport.train.config import paper_runs

    runs = paper_runs()
    if tiny:  # the MobileNet runs of Table 2, from scratch, 1 epoch at 32 px
        return [r.replace(weights="none", epochs=1, input_size=32, limit=16, device="cpu", out_dir=out / r.name)
                for r in runs if r.arch == "mobilenet"]
    return [r.replace(out_dir=out / r.name) for r in runs]


def _load_stage(manifest, configs) -> tuple[dict[str, Any], dict]:
    """Decode + resize every split once (the grid's runs then read the cache): seconds, img/s, train sizes."""
    from moleport.data.arrays import load_split

    t0, n, n_train = time.perf_counter(), 0, {}
    for size, limit in {(c.input_size, c.limit) for c in configs}:
        for split in ("train", "val", "test"):
            k = len(load_split(manifest, split, size=size, limit=limit).y)
            n += k
            n_train.setdefault((size, limit), k)
    sec = time.perf_counter() - t0
    return {"images": n, "seconds": round(sec, 2), "img_per_s": round(n / max(sec, 1e-9), 1)}, n_train


def _run_rows(result: dict[str, Any], configs, n_train: dict, bench: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per run: training img/s (from metrics.json) beside the bench's pure-step img/s of that arch and batch."""
    step_ips = {(r["arch"], r["batch_size"]): r["img_per_s"] for r in bench if "img_per_s" in r}
    rows = []
    for r, cfg in zip(result["rows"], configs):
        if "run_dir" not in r:
            rows.append({"run": r["run"], "error": r.get("error")})
            continue
        m = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        ips = n_train[(cfg.input_size, cfg.limit)] * m["epochs_run"] / max(m["train_seconds"], 1e-9)
        ref = step_ips.get((cfg.arch, cfg.batch_size))
        rows.append({"run": r["run"], "epochs_run": m["epochs_run"], "train_seconds": round(m["train_seconds"], 1),
                     "train_img_per_s": round(ips, 1), "bench_step_img_per_s": ref,
                     "pipeline_efficiency": round(ips / ref, 2) if ref else None})
    return rows


def _report(out: Path, info: dict[str, Any], grid_md: str) -> Path:
    from moleport.bench import _table

    lines = ["# GPU check", "", f"machine: {json.dumps(info['machine'])}", "",
             f"grid wall time: {info['grid_seconds']:.1f} s (target <= {TARGET_S:.0f} s on one H200: "
             f"{'met' if info['target_met'] else 'NOT met'}); GPU-busy fraction: {info['gpu_busy_fraction']}", "",
             "## data stage (decode + resize, once)", _table([info["load"]]), "",
             "## training bench (pure steps, resident synthetic batch)", _table(info["bench"]), "",
             "## per run", _table(info["runs"]), "", grid_md]
    path = out / "gpu_check.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out / "gpu_check.json").write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    return path


def run_check(tiny: bool, data: Path | None, out: Path) -> Path:
    from moleport.bench import _machine
    from moleport.train.bench import bench_train
    from moleport.train.cli import resolve_manifest
    from moleport.train.grid import run_grid

    out.mkdir(parents=True, exist_ok=True)
    data = _tiny_data(out) if tiny else (data or shared_path("data", "ham10000-mel-nv"))
    if data is None:
        raise SystemExit("gpu_check: ../shared/data/ham10000-mel-nv is absent; pass --data")
    manifest = resolve_manifest(str(data), out)
    configs = _configs(tiny, out / "grid")
    load, n_train = _load_stage(manifest, configs)
    bench = (bench_train(["mobilenet"], batch_sizes=(8,), steps=1, warmup=0, input_size=32, device="cpu")
             if tiny else bench_train(sorted({c.arch for c in configs}), batch_sizes=(8, 16), steps=10, warmup=3))
    t0 = time.perf_counter()
    with _BusySampler() as busy:
        result = run_grid(configs, manifest, out / "grid")
    sec = time.perf_counter() - t0
    info = {"machine": _machine(), "tiny": tiny, "data": str(data), "load": load, "bench": bench,
            "grid_seconds": round(sec, 1), "target_met": sec <= TARGET_S, "gpu_busy_fraction": busy.busy_fraction,
            "runs": _run_rows(result, configs, n_train, bench), "winner": result["winner"]}
    return _report(out, info, (out / "grid" / "paper_grid.md").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m moleport.train.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU smoke mode for CI: synthetic data, MobileNet runs, 1 epoch")
    p.add_argument("--data", type=Path, help="source folder or manifest (default ../shared/data/ham10000-mel-nv)")
    p.add_argument("--out", type=Path, help="output folder (default artifacts/gpu_check)")
    args = p.parse_args(argv)
    path = run_check(args.tiny, args.data, args.out or artifacts_dir() / "gpu_check")
    print(path.read_text())
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
