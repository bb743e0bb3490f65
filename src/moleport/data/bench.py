"""Data-stage benchmarks: synthetic image generation and decoding speed (one process).

Rates are reported both per wall-clock second and per CPU second of this process
(``cpu_images_per_s``), since the wall-clock rate drops when other work shares the cores.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from moleport.data.split import inspect_image
from moleport.data.synth import png_bytes, render, synth_labels
from moleport.preprocess import load_image


def _timed(n: int, work: Callable[[int], object]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        work(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"images": n, "seconds": round(wall, 3), "images_per_s": round(n / max(wall, 1e-9), 1),
            "cpu_images_per_s": round(n / max(cpu, 1e-9), 1)}


def bench_synth(n: int = 200, seed: int = 0, size: int = 224) -> dict[str, float]:
    """Render + PNG-encode ``n`` synthetic images in memory (what ``generate`` does, minus the disk)."""
    labels = synth_labels(n, seed)
    return _timed(n, lambda i: png_bytes(render(seed, i, labels[i], size)))


def bench_decode(paths: Sequence[str | Path] | None = None, n: int = 200) -> dict[str, dict[str, float]]:
    """Decode+hash (what ``make_manifest`` does per file) and ``load_image`` (decode + canonical resize).

    Without ``paths``, ``n`` synthetic PNGs are written to a temporary folder first.
    """
    with tempfile.TemporaryDirectory(prefix="moleport-bench-") as tmp:
        if paths is None:
            labels = synth_labels(n, 0)
            paths = []
            for i, lab in enumerate(labels):
                p = Path(tmp) / f"{i:05d}.png"
                p.write_bytes(png_bytes(render(0, i, lab)))
                paths.append(p)
        paths = list(paths)[:n]
        return {"decode_hash": _timed(len(paths), lambda i: inspect_image(paths[i])),
                "load_image": _timed(len(paths), lambda i: load_image(paths[i], 224))}


def run_all(n: int = 200) -> dict[str, dict]:
    """Everything ``make bench`` prints for the data stage."""
    return {"synth": bench_synth(n), **bench_decode(n=min(n, 100))}


def format_results(results: dict[str, dict]) -> str:
    return "\n".join(f"data.{name:<12} {r['images_per_s']:>8.1f} images/s  ({r['cpu_images_per_s']:.1f}/CPU-s, "
                     f"{r['images']} images in {r['seconds']:.2f} s)" for name, r in results.items())


if __name__ == "__main__":
    print(format_results(run_all()))
