"""``moleport train``: one named run (``--run``) or the paper's Table 2 (``--grid paper``).

Under ``torchrun`` (or with ``--distributed N``, which re-launches itself under torchrun): ``--run`` trains
data-parallel over the ranks, ``--grid`` spreads whole runs over them (see :mod:`moleport.train.distributed`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moleport.argtypes import add_dataclass_arguments
from moleport.paths import artifacts_dir
from moleport.train.config import RunConfig

#: RunConfig fields ``moleport train`` offers as options (in --help order; --distributed sits after the 10th).
RUN_OPTIONS = ("arch", "device", "epochs", "limit", "weights", "seed", "resume", "augment", "compile", "precision",
               "jitter", "acquisition", "freeze_blocks", "color_constancy", "calibrate", "target_sensitivity",
               "sensitivity_confidence", "tta")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a run of Table 2 or the quick profile",
                              description="Train one run (--run NAME) or the whole of Table 2 (--grid paper).")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run name from src/moleport/train/runs.json (e.g. quick, mobilenet-bs16)")
    which.add_argument("--grid", choices=["paper"], help="all seven runs of the paper's Table 2")
    which.add_argument("--list", action="store_true", help="list the runs and exit")
    p.add_argument("--data", help="split manifest .json, or a source folder (a manifest is built from it)")
    p.add_argument("--out", type=Path, default=None, help="parent folder of run folders (default artifacts/train)")
    add_dataclass_arguments(p, RunConfig, only=RUN_OPTIONS[:10], override=True)
    p.add_argument("--distributed", type=int, metavar="N",
                   help="re-run this command under torchrun with N local processes (--run: data-parallel, "
                        "--grid: runs spread over the processes)")
    add_dataclass_arguments(p, RunConfig, only=RUN_OPTIONS[10:], override=True)
    p.set_defaults(func=main)
    return p


def resolve_manifest(data: str, out: Path):
    """A Manifest from a .json manifest, or built (and saved under ``out``) from a source folder."""
    from moleport.data.manifest import load_manifest

    path = Path(data)
    if path.suffix == ".json" or path.is_file():
        return load_manifest(path)
    from moleport.data.sources import open_source
    from moleport.data.split import make_manifest

    manifest = make_manifest(open_source(path))
    saved = manifest.save(out / f"manifest-{path.resolve().name}.json")
    print(f"built split manifest {saved}: {manifest.counts()}", flush=True)
    return manifest


def _overrides(args: argparse.Namespace, cfg, out: Path):
    """The run ``cfg`` with every option given on the command line (``--augment`` only adds augmentation)."""
    changes = {key: getattr(args, key) for key in RUN_OPTIONS if getattr(args, key, None) is not None}
    changes.update(out_dir=out / cfg.name, augment=args.augment or cfg.augment)
    for key in ("color_constancy", "tta"):
        if changes.get(key) == "none":
            changes[key] = None
    return cfg.replace(**changes)


def main(args: argparse.Namespace) -> int:
    from moleport.train import distributed as D
    from moleport.train.config import load_runs

    if args.list:
        for name, cfg in load_runs().items():
            tag = f"paper acc {cfg.paper_accuracy}" if cfg.paper else "NOT a paper run"
            print(f"{name:16s} {cfg.arch:10s} epochs {cfg.epochs:3d} batch {cfg.batch_size:3d} lr {cfg.lr:g} "
                  f"weights {cfg.weights or 'none'} ({tag})")
        return 0
    if not args.data:
        print("moleport train: --data MANIFEST_OR_SOURCE is required", file=sys.stderr)
        return 2
    if getattr(args, "distributed", None) and not D.launched_by_torchrun():
        return D.exec_torchrun(args.distributed, sys.argv[1:])
    if D.launched_by_torchrun():
        backend = "gloo" if args.grid else D.default_backend(args.device)
        with D.process_group(backend) as ctx:
            return _train(args, ctx)
    return _train(args, D.SOLO)


def _train(args: argparse.Namespace, ctx) -> int:
    from moleport.train.config import ConfigError, get_run, paper_runs

    out = args.out or artifacts_dir() / "train"
    try:
        manifest = resolve_manifest(args.data, out)
        if args.grid:
            from moleport.train.grid import run_grid

            result = run_grid([_overrides(args, c, out) for c in paper_runs()], manifest, out, ctx)
            if ctx.is_main:
                print((out / "paper_grid.md").read_text())
            return 0 if result["winner"] else 1
        from moleport.train.loop import train_run

        run_dir = train_run(_overrides(args, get_run(args.run), out), manifest, ctx)
        if ctx.is_main:
            print(run_dir / "checkpoint.pt")
        return 0
    except (ConfigError, ValueError, RuntimeError) as exc:
        print(f"moleport train: {exc}", file=sys.stderr)
        return 1
