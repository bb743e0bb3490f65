"""``moleport data``: synth | split | report."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from moleport.argtypes import fraction, non_negative_int, positive_int, probability
from moleport.data.sources import SourceError


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="make the synthetic dataset, split a source, report on a source")
    sub = p.add_subparsers(dest="data_command", required=True)

    s = sub.add_parser("synth", help="write the deterministic synthetic dataset (PNGs + metadata.csv)")
    s.add_argument("--n", type=positive_int, default=600, help="number of images (default 600)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--size", type=positive_int, default=224)
    s.add_argument("--melanoma-fraction", type=probability, default=None, help="default 3638/8598 (the paper's ratio)")
    s.add_argument("--workers", type=positive_int, default=1, help="processes (output is identical for any value)")
    s.set_defaults(func=cmd_synth)

    sp = sub.add_parser("split", help="decode, validate, de-duplicate and split a source into a manifest")
    sp.add_argument("source", type=Path, help="dataset folder (CSV, ImageFolder, or the paper's Kaggle root)")
    sp.add_argument("--out", type=Path, required=True, help="manifest JSON to write")
    sp.add_argument("--preset", choices=["paper"], default=None)
    sp.add_argument("--seed", type=non_negative_int, default=0)
    sp.add_argument("--ratios", type=fraction, nargs=3, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    sp.add_argument("--skip-bad", action="store_true", help="exclude bad files (listed in the report) instead of failing")
    sp.add_argument("--duplicates", choices=["drop", "refuse"], default="drop")
    sp.add_argument("--report", type=Path, default=None, help="JSON report (default: <out>.report.json)")
    sp.add_argument("--workers", type=positive_int, default=2)
    sp.set_defaults(func=cmd_split)

    r = sub.add_parser("report", help="class counts, image sizes, duplicates and bad files of a source")
    r.add_argument("source", type=Path)
    r.add_argument("--preset", choices=["paper"], default=None)
    r.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    r.add_argument("--workers", type=positive_int, default=2)
    r.set_defaults(func=cmd_report)


def cmd_synth(args: argparse.Namespace) -> int:
    from moleport.data.synth import MELANOMA_FRACTION, generate

    frac = MELANOMA_FRACTION if args.melanoma_fraction is None else args.melanoma_fraction
    t0 = time.perf_counter()
    try:
        csv_path = generate(args.out, args.n, args.seed, melanoma_fraction=frac, size=args.size, workers=args.workers)
    except (ValueError, OSError) as exc:
        print(f"moleport data synth: {exc}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    print(f"wrote {args.n} images and {csv_path} in {dt:.1f} s ({args.n / max(dt, 1e-9):.0f} images/s)")
    return 0


def _counts_table(counts: dict) -> str:
    rows = [f"{'split':<6} {'melanoma':>9} {'nevus':>7} {'total':>7}"]
    for split, c in counts.items():
        rows.append(f"{split:<6} {c['melanoma']:>9} {c['nevus']:>7} {c['melanoma'] + c['nevus']:>7}")
    return "\n".join(rows)


def cmd_split(args: argparse.Namespace) -> int:
    from moleport.data.manifest import ManifestError
    from moleport.data.sources import scan_source
    from moleport.data.split import DataError, build_split

    report_path = args.report or args.out.with_name(args.out.stem + ".report.json")
    for what, target in (("--out", args.out), ("--report", report_path)):
        if target.is_dir():
            print(f"moleport data split: {what} {target} is a folder; give a file name "
                  f"(e.g. {target / 'manifest.json'})", file=sys.stderr)
            return 2
    try:
        scan = scan_source(args.source, args.preset)
        res = build_split(scan.records, seed=args.seed, ratios=tuple(args.ratios), duplicates=args.duplicates,
                          skip_bad=args.skip_bad, report_path=report_path, problems=scan.problems,
                          ignored=scan.ignored,
                          workers=args.workers,
                          source={"path": str(args.source.resolve()), "layout": scan.layout, "preset": args.preset})
    except (SourceError, DataError, ValueError) as exc:
        print(f"moleport data split: {exc}", file=sys.stderr)
        if report_path.is_file():
            print(f"report: {report_path}", file=sys.stderr)
        return 1
    try:
        res.manifest.save(args.out)
    except ManifestError as exc:
        print(f"moleport data split: {exc}", file=sys.stderr)
        return 1
    rep = res.report
    print(_counts_table(res.manifest.counts()))
    print(f"manifest: {args.out} (sha256 {res.manifest.sha256[:16]})  report: {report_path}")
    print(f"excluded: {len(rep.bad_files)} bad file(s), {len(rep.duplicates_dropped)} duplicate(s) dropped, "
          f"{len(rep.label_conflicts)} label conflict(s); {rep.seconds:.1f} s")
    for b in rep.bad_files:
        print(f"  skipped {b['path']}: {b['problem']}")
    for b in rep.ignored_files:
        print(f"  ignored {b['path']}: {b['problem']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from moleport.data.report import dataset_report, exit_code, format_report
    from moleport.data.split import DataError, write_json

    if args.json is not None and args.json.is_dir():
        print(f"moleport data report: --json {args.json} is a folder; give a file name", file=sys.stderr)
        return 2
    try:
        rep = dataset_report(args.source, args.preset, workers=args.workers)
    except SourceError as exc:
        print(f"moleport data report: {exc}", file=sys.stderr)
        return 1
    print(format_report(rep))
    if args.json is not None:
        try:
            write_json(args.json, rep)
        except DataError as exc:
            print(f"moleport data report: {exc}", file=sys.stderr)
            return 1
    code = exit_code(rep)
    if code:
        print(f"FAILED: {len(rep['bad_files'])} bad file(s), "
              f"{len(rep['duplicates_across_classes'])} cross-class duplicate group(s)", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run ``moleport data ...`` without the other stages (``python -m moleport.data.cli``)."""
    parser = argparse.ArgumentParser(prog="moleport")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
