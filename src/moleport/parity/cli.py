"""``moleport parity BUNDLE``: judge every artifact of an export bundle; non-zero exit on any violation
(``--allow-rejected``: only on a bundle problem or an fp32/fp16 violation, as make export judges)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from moleport.data.manifest import ManifestError
from moleport.runtimes.bundle import BundleError
from moleport.parity.gates import Gates, GatesError


def _gate_pair(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--gate needs KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"--gate {key}: value {value!r} is not a number or true/false") from None


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("parity", help="prove exported models reproduce the PyTorch reference",
                              description=__doc__)
    p.add_argument("bundle", help="export bundle folder (artifacts/export/<name>)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-manifest", default=None, help="split manifest (default: manifest.json's split_manifest)")
    p.add_argument("--ckpt", default=None, help="reference checkpoint (default: manifest.json's checkpoint)")
    p.add_argument("--limit", type=int, default=None, help="judge only the first N images of the split")
    p.add_argument("--runtimes", nargs="+", default=None,
                   help="runtimes to run (default: every available one), e.g. onnxruntime litert mediapipe")
    p.add_argument("--gates-json", default=None, help="JSON object overriding fields of the default Gates")
    p.add_argument("--gate", action="append", type=_gate_pair, default=[], metavar="KEY=VALUE",
                   help="override one gate (repeatable), e.g. --gate fp32_max_abs_dp=1e-5")
    p.add_argument("--threads", type=int, default=1, help="threads per runtime (latency is single-thread at 1)")
    p.add_argument("--latency-runs", type=int, default=10, help="timed single-image runs per row (0: no latency)")
    p.add_argument("--junit-xml", default=None, metavar="FILE",
                   help="also write the verdicts as JUnit XML (one testcase per artifact x runtime) for CI")
    p.add_argument("--ci-summary", default=None, metavar="FILE",
                   help="also write a short Markdown verdict (default: append to $GITHUB_STEP_SUMMARY when set; "
                        "pass '' to turn it off)")
    p.add_argument("--allow-rejected", action="store_true",
                   help="exit 0 when only optional (w8/int8) artifacts fail their gates: they are rejected, not "
                        "shipped, as make export / make ship treat them")
    p.set_defaults(func=run)
    return p


def gates_from_args(args) -> Gates:
    gates = Gates.load(args.gates_json) if args.gates_json else Gates()
    return Gates.from_mapping(dict(args.gate), base=gates)


def _ci_targets(args) -> tuple[str | None, str | None, bool]:
    """(junit path, summary path, append summary?): the summary defaults to $GITHUB_STEP_SUMMARY (appended)."""
    junit = getattr(args, "junit_xml", None) or None
    summary = getattr(args, "ci_summary", None)
    env = os.environ.get("GITHUB_STEP_SUMMARY") or None
    if summary is None:
        summary = env
    summary = summary or None
    return junit, summary, summary is not None and summary == env


def write_ci_outputs(args, payload: dict) -> int:
    """Write the --junit-xml / --ci-summary files of ``payload``; 0, or 2 when one cannot be written."""
    from moleport.parity.junit import write_ci_summary, write_junit_xml

    junit, summary, append = _ci_targets(args)
    rc = 0
    for what, target, write in (("JUnit XML", junit, lambda p: write_junit_xml(payload, p)),
                                ("CI summary", summary, lambda p: write_ci_summary(payload, p, append=append))):
        if not target:
            continue
        try:
            write(target)
        except OSError as exc:
            print(f"moleport parity: cannot write the {what} {target}: {exc}", file=sys.stderr)
            rc = 2
    return rc


def _error_payload(args, message: str) -> dict:
    """A payload for a run that could not start, so CI still gets a (failing) report."""
    return {"passed": False, "violations": [message], "problems": [message], "rows": [], "artifacts": {},
            "bundle": str(args.bundle), "split": args.split, "notes": []}


def run(args) -> int:
    from moleport.parity.harness import ParityError, run_parity

    try:
        gates = gates_from_args(args)
        payload = run_parity(args.bundle, split_manifest=args.split_manifest, split=args.split, limit=args.limit,
                             gates=gates, runtimes=args.runtimes, threads=args.threads,
                             latency_runs=args.latency_runs, checkpoint=args.ckpt)
    except (BundleError, ManifestError, ParityError, GatesError) as exc:
        print(f"moleport parity: {exc}", file=sys.stderr)
        write_ci_outputs(args, _error_payload(args, f"moleport parity: {exc}"))
        return 2
    ci_rc = write_ci_outputs(args, payload)
    stem = "parity-partial" if payload.get("partial") else "parity"
    print((Path(payload["bundle"]) / f"{stem}.md").read_text(encoding="utf-8"))
    if payload["passed"]:
        print(f"parity passed: {len(payload['rows'])} row(s), reports in {payload['bundle']}", file=sys.stderr)
        return ci_rc
    tolerated = getattr(args, "allow_rejected", False) and payload.get("required_passed")
    head = (f"parity passed for fp32/fp16; {len(payload.get('rejected') or [])} optional artifact(s) rejected"
            if payload.get("required_passed") else "parity FAILED")
    print(f"{head}: {len(payload['violations'])} violation(s):", file=sys.stderr)
    for v in payload["violations"]:
        print(f"  - {v}", file=sys.stderr)
    return ci_rc if tolerated else 1
