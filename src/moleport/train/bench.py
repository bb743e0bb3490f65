"""Training throughput per architecture (img/s) and the projected time of the paper's grid."""
from __future__ import annotations

import time
from typing import Any, Iterable

import torch

from moleport.spec import ModelSpec
from moleport.train.config import paper_runs
from moleport.train.data import to_input
from moleport.train.loop import cpu_supports_bf16, make_step_fn, resolve_device

#: Training images of the paper's split (60 % of 8598 HAM10000 melanoma + nevus images).
PAPER_TRAIN_IMAGES = round(0.6 * 8598)
DEFAULT_ARCHS = ("alexnet", "mobilenet", "mobilenet_v2", "resnet50", "vgg16", "vgg19")


def _time_steps(arch: str, batch_size: int, steps: int, warmup: int, device: torch.device, size: int,
                compile_: bool, precision: str = "auto") -> float:
    """Seconds per optimizer step (same step function as training, uint8 batch normalised on device)."""
    from moleport.models import build_model

    torch.manual_seed(0)
    model = build_model(arch).to(device, memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    step = make_step_fn(model, opt, device, compile_, precision)
    spec = ModelSpec(arch, input_size=size)
    x_u8 = torch.randint(0, 256, (batch_size, size, size, 3), dtype=torch.uint8, device=device)
    y = (torch.arange(batch_size, device=device) % 2).float()
    for _ in range(warmup):
        step(to_input(x_u8, spec, device), y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, _ = step(to_input(x_u8, spec, device), y)
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps


def _precisions(dev: torch.device, precisions: Iterable[str] | None) -> list[str]:
    """fp32 and bf16 side by side by default (CPU: bf16 only where the processor has it)."""
    wanted = list(precisions or ("fp32", "bf16"))
    return [p for p in wanted if not (p == "bf16" and dev.type == "cpu" and not cpu_supports_bf16())]


def bench_train(archs: Iterable[str] | None = None, batch_sizes: Iterable[int] = (16, 256), steps: int = 3,
                device: str | torch.device | None = None, *, warmup: int = 1, input_size: int = 224,
                max_cpu_batch: int = 32, compile: bool = False,
                precisions: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """img/s per (architecture, batch size, precision); CPU batches above ``max_cpu_batch`` are skipped.

    ``precision`` is the forward autocast of :func:`moleport.train.loop.make_step_fn` (weights stay fp32).
    ``projected_paper_min`` is the time of all Table 2 epochs of that architecture at this throughput
    on the paper-sized training split (validation passes not included).
    """
    dev = resolve_device("auto" if device is None else str(device))
    epochs: dict[str, int] = {}
    for r in paper_runs():
        epochs[r.arch] = epochs.get(r.arch, 0) + r.epochs
    rows = []
    for arch in archs or DEFAULT_ARCHS:
        for bs in batch_sizes:
            for prec in _precisions(dev, precisions):
                row: dict[str, Any] = {"arch": arch, "batch_size": bs, "precision": prec, "device": str(dev),
                                       "threads": torch.get_num_threads()}
                if dev.type == "cpu" and bs > max_cpu_batch:
                    rows.append({**row, "skipped": f"batch > {max_cpu_batch} on CPU"})
                    continue
                ips = bs / _time_steps(arch, bs, steps, warmup, dev, input_size, compile, prec)
                row.update(steps=steps, step_ms=round(bs / ips * 1000, 1), img_per_s=round(ips, 2),
                           paper_epochs=epochs.get(arch, 0),
                           projected_paper_min=round(epochs.get(arch, 0) * PAPER_TRAIN_IMAGES / ips / 60, 1))
                rows.append(row)
                print(f"bench {arch} bs {bs} {prec} on {dev}: {ips:.2f} img/s", flush=True)
    return rows


def projected_grid_hours(rows: list[dict[str, Any]]) -> float:
    """Table 2 in hours using, per architecture, the best measured throughput."""
    best: dict[str, float] = {}
    for r in rows:
        if "img_per_s" in r:
            best[r["arch"]] = max(best.get(r["arch"], 0.0), r["img_per_s"])
    total = sum(r.epochs * PAPER_TRAIN_IMAGES / best[r.arch] for r in paper_runs() if r.arch in best)
    return total / 3600.0
