"""moleport.argtypes.add_dataclass_arguments: a config dataclass's fields become options, declared once."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from moleport.argtypes import add_dataclass_arguments, cli, dataclass_from_args


@dataclass(frozen=True)
class Cfg:
    name: str = field(default="x", metadata=cli("the name"))
    count: int | None = None
    paths: tuple[Path, ...] = field(default=(), metadata=cli("repeatable", flag="--path"))
    draws: int = field(default=7, metadata=cli(flag="--bootstrap"))
    check: bool = True
    verbose: bool = False
    mode: str = field(default="a", metadata=cli(choices=["a", "b"]))


def _parser(**kw) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="t")
    add_dataclass_arguments(ap, Cfg, **kw)
    return ap


def test_defaults_types_flags_and_help_come_from_the_fields():
    ap = _parser()
    assert dataclass_from_args(Cfg, ap.parse_args([])) == Cfg()
    a = ap.parse_args(["--name", "y", "--count", "3", "--path", "p", "--path", "q", "--bootstrap", "9", "--no-check",
                       "--verbose", "--mode", "b"])
    assert dataclass_from_args(Cfg, a) == Cfg("y", 3, (Path("p"), Path("q")), 9, False, True, "b")
    text = ap.format_help()
    assert "the name" in text and "--name NAME" in text and "--path PATH" in text and "--bootstrap BOOTSTRAP" in text
    assert "{a,b}" in text
    with pytest.raises(SystemExit):
        ap.parse_args(["--count", "many"])


def test_override_mode_leaves_unset_options_none_and_only_limits_and_orders():
    ap = _parser(only=("verbose", "count"), override=True)
    assert vars(ap.parse_args([])) == {"verbose": None, "count": None}
    assert vars(ap.parse_args(["--no-verbose", "--count", "2"])) == {"verbose": False, "count": 2}
    with pytest.raises(ValueError, match="no field"):
        _parser(only=("nope",))
