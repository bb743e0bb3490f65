"""`make export`: the main job, end to end, on the embedded default data.

    synthetic dataset -> split manifest -> quick-profile MobileNet -> every export -> parity

With ``--ckpt`` (and optionally ``--data``) it exports and checks a given checkpoint instead.
Prints a summary table (format, precision, size, export status, parity) and exits non-zero
when any format failed to convert or any parity gate was violated.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from moleport.paths import artifacts_dir


@dataclass(frozen=True)
class PipelineConfig:
    name: str = "default"
    n: int = 1000
    seed: int = 0
    ckpt: Path | None = None
    data: Path | None = None
    manifest: Path | None = None
    profile: str = "quick"
    parity: bool = True
    limit: int | None = None


def _step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.perf_counter()


def prepare_manifest(cfg: PipelineConfig, root: Path) -> Path:
    """The split manifest for the run: given, built from --data, or from the synthetic set."""
    from moleport.data.sources import open_source
    from moleport.data.split import make_manifest
    from moleport.data.synth import generate

    if cfg.manifest is not None:
        return cfg.manifest
    source = cfg.data
    if source is None:
        source = root / "data" / f"synth-n{cfg.n}-s{cfg.seed}"
        if not (source / "metadata.csv").is_file():
            t = _step(f"generating the embedded synthetic dataset ({cfg.n} images, seed {cfg.seed})")
            generate(source, n=cfg.n, seed=cfg.seed)
            print(f"    {source} ({time.perf_counter() - t:.1f} s)")
    out = root / "splits" / f"{cfg.name}.json"
    t = _step(f"splitting {source} 60/20/20 per class")
    manifest = make_manifest(open_source(source), seed=cfg.seed)
    manifest.save(out)
    print(f"    {out}: {json.dumps(manifest.counts())} ({time.perf_counter() - t:.1f} s)")
    return out


def train_checkpoint(cfg: PipelineConfig, manifest: Path, root: Path) -> Path:
    from moleport.train.config import get_run
    from moleport.train.loop import train_run

    run = dataclasses.replace(get_run(cfg.profile), out_dir=root / "train" / f"{cfg.profile}-{cfg.name}")
    t = _step(f"training '{cfg.profile}' profile ({run.arch}, {run.epochs} epochs, batch {run.batch_size}, lr {run.lr})")
    run_dir = train_run(run, manifest)
    print(f"    {run_dir} ({time.perf_counter() - t:.1f} s)")
    return Path(run_dir) / "checkpoint.pt"


#: Precisions whose parity failure fails the whole job. An int8 variant is an optional size/speed
#: trade-off: when it fails its gates it is *rejected* (listed loudly, never shipped), not fatal.
REQUIRED_PRECISIONS = ("fp32", "fp16")


def parity_verdicts(parity: dict | None) -> dict[str, bool]:
    """artifact path -> passed (every runtime row of it passed); the reference row is skipped."""
    out: dict[str, bool] = {}
    for row in (parity or {}).get("rows", []):
        if row.get("is_reference"):
            continue
        out[row["artifact"]] = out.get(row["artifact"], True) and bool(row.get("passed"))
    return out


def summarize(man: dict, parity: dict | None) -> str:
    """The summary table from the bundle's manifest.json contents and the parity report."""
    runtimes: dict[str, list[str]] = {}
    for row in (parity or {}).get("rows", []):
        if not row.get("is_reference"):
            runtimes.setdefault(row["artifact"], []).append(f"{row['runtime']}:{'pass' if row.get('passed') else 'FAIL'}")
    verdicts = parity_verdicts(parity)
    lines = ["| format | precision | file | size (KiB) | export | parity | ships |", "|---|---|---|---:|---|---|---|"]
    for f in man["files"]:
        ok = verdicts.get(f["path"])
        failed_label = "**FAILED**" if f["precision"] in REQUIRED_PRECISIONS else "**REJECTED**"
        ships = "-" if ok is None else ("yes" if ok else failed_label)
        lines.append(f"| {f['format']} | {f['precision']} | {f['path']} | {f['bytes'] / 1024:,.0f} | ok | "
                     f"{', '.join(runtimes.get(f['path'], [])) or '-'} | {ships} |")
    for fail in man.get("failures", []):
        lines.append(f"| {fail.get('format')} | {fail.get('precision')} | - | - | FAILED: {str(fail.get('error'))[:80]} | - | no |")
    return "\n".join(lines)


def verdict(man: dict, export_failures: list, parity: dict | None) -> tuple[bool, list[str]]:
    """(failed, messages): export failures and fp32/fp16 parity violations fail the job."""
    precision = {f["path"]: f["precision"] for f in man["files"]}
    msgs = [f"export of {f.format} {f.precision} failed: {f.error}" for f in export_failures]
    for art, ok in parity_verdicts(parity).items():
        if not ok:
            fatal = precision.get(art) in REQUIRED_PRECISIONS
            msgs.append(f"{'FAILED' if fatal else 'REJECTED (not shipped)'}: {art} violates its parity gates")
    failed = bool(export_failures) or any(m.startswith("FAILED") for m in msgs)
    return failed, msgs


def run_pipeline(cfg: PipelineConfig) -> int:
    from moleport.export.bundle import export_bundle
    from moleport.parity.harness import run_parity

    root = artifacts_dir()
    t0 = time.perf_counter()
    manifest = prepare_manifest(cfg, root) if (cfg.ckpt is None or cfg.data or cfg.manifest) else None
    ckpt = cfg.ckpt or train_checkpoint(cfg, manifest, root)
    bundle = root / "export" / cfg.name
    t = _step(f"exporting {ckpt} -> {bundle}")
    result = export_bundle(ckpt, bundle.parent, manifest=manifest, name=cfg.name, force=True)
    print(f"    ({time.perf_counter() - t:.1f} s)")
    parity = None
    if cfg.parity:
        t = _step("parity: every artifact in its own runtime vs the PyTorch reference")
        parity = run_parity(bundle, split_manifest=manifest, limit=cfg.limit)
        print((bundle / "parity.md").read_text())
        print(f"    ({time.perf_counter() - t:.1f} s)")
    print("\n" + summarize(result.manifest, parity))
    failed, msgs = verdict(result.manifest, list(result.failures), parity)
    for m in msgs:
        print(m, file=sys.stderr)
    if parity is not None:
        for v in parity["violations"]:
            print(f"  gate: {v}", file=sys.stderr)
    print(f"\nmake export: {'FAILED' if failed else 'ok'} in {time.perf_counter() - t0:.0f} s; bundle: {bundle}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moleport.pipeline", description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="default", help="bundle name under artifacts/export/")
    ap.add_argument("--n", type=int, default=1000, help="synthetic images to generate (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt", type=Path, help="export this checkpoint instead of training the quick profile")
    ap.add_argument("--data", type=Path, help="data source (folder) for the split manifest")
    ap.add_argument("--manifest", type=Path, help="an existing split manifest")
    ap.add_argument("--profile", default="quick", help="training profile/run name (default: quick)")
    ap.add_argument("--no-parity", dest="parity", action="store_false")
    ap.add_argument("--limit", type=int, help="parity on the first N test images only")
    a = ap.parse_args(argv)
    cfg = PipelineConfig(name=a.name, n=a.n, seed=a.seed, ckpt=a.ckpt, data=a.data, manifest=a.manifest,
                         profile=a.profile, parity=a.parity, limit=a.limit)
    return run_pipeline(cfg)


if __name__ == "__main__":
    sys.exit(main())
