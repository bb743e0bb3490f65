"""``moleport`` command line: one sub-command per stage.

Each stage owns a ``register(subparsers)`` function in ``moleport/<stage>/cli.py``
that adds its parser and sets ``func`` (called with the parsed namespace; returns an
exit code). This module only dispatches.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: (sub-command, module that registers it)
STAGES = (
    ("data", "moleport.data.cli"),
    ("train", "moleport.train.cli"),
    ("export", "moleport.export.cli"),
    ("parity", "moleport.parity.cli"),
    ("predict", "moleport.predict"),
    ("evaluate", "moleport.evaluate.cli"),
    ("calibrate", "moleport.calibrate.cli"),
    ("audit", "moleport.evaluate.audit_cli"),
    ("golden", "moleport.apps.golden"),
    ("bench", "moleport.bench"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moleport", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in STAGES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # stage not installed in this checkout
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
