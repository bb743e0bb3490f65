"""argparse helpers: ``type=`` functions that range-check every user-supplied number with a message saying why,
and command-line options built from a config dataclass's fields (:func:`add_dataclass_arguments`), so a field is
declared once, with its type, default and help, and every front end offers it the same way."""
from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from typing import Any, Iterable, Sequence


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def probability(text: str) -> float:
    """A threshold or sensitivity: strictly between 0 and 1."""
    v = _number(text, float, "a number")
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{v:g} is outside (0, 1): a threshold on P(melanoma) must be "
                                         f"strictly between 0 and 1")
    return v


def fraction(text: str) -> float:
    """A share such as a split ratio: 0 to 1 inclusive."""
    v = _number(text, float, "a number")
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v:g} is outside [0, 1]")
    return v


def positive_float(text: str) -> float:
    """A temperature or another scale: > 0."""
    v = _number(text, float, "a number")
    if v <= 0.0:
        raise argparse.ArgumentTypeError(f"{v:g} must be > 0")
    return v


def positive_int(text: str) -> int:
    """A count or a limit: an integer >= 1."""
    v = _number(text, int, "an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be an integer >= 1")
    return v


def non_negative_int(text: str) -> int:
    v = _number(text, int, "an integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be an integer >= 0")
    return v


# --- options from config dataclasses ---------------------------------------------------------------
def cli(help: str | None = None, *, flag: str | None = None, **argparse_kwargs: Any) -> dict[str, Any]:
    """``dataclasses.field(metadata=cli(...))``: how :func:`add_dataclass_arguments` offers the field.

    ``flag`` replaces the default ``--field-name``; other keywords (``type``, ``choices``, ``action``,
    ``default``, ``metavar``) go to ``add_argument`` as they are and win over what the field implies."""
    return {"cli": {"help": help, "flag": flag, **argparse_kwargs}}


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether it is ``tuple[X, ...]``)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint, args = args[0], list(typing.get_args(args[0]))
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0], True
    return hint, False


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                            only: Sequence[str] | None = None, exclude: Iterable[str] = (),
                            override: bool = False) -> list[str]:
    """Add one option per field of the dataclass ``cls`` (``only``: these, in this order; minus ``exclude``);
    return the ``dest`` of each (the field name).

    The option is ``--field-name`` (or the field's ``cli(flag=...)``), its help the field's ``cli(help)``, its
    ``type`` the field's type (``X | None`` -> X; ``str`` needs none). A ``bool`` field becomes ``store_true``
    (``--no-field-name`` / ``store_false`` when it defaults to True), a ``tuple[X, ...]`` a repeatable option
    collecting a list. The default is the field's; with ``override=True`` it is None (the option overrides a
    config only when given) and a ``bool`` field takes ``--x/--no-x``. Keywords in ``cli(...)`` win."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(only) if only is not None else list(fields)
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    skip = set(exclude)
    dests = []
    for name in names:
        if name in skip:
            continue
        f = fields[name]
        meta = dict(f.metadata.get("cli") or {})
        help_text, flag = meta.pop("help", None), meta.pop("flag", None)
        kind, repeated = _unwrap(hints[name])
        default = None if override else _field_default(f)
        kwargs: dict[str, Any] = {"dest": name, "help": help_text}
        if kind is bool:
            if override:
                kwargs.update(action=argparse.BooleanOptionalAction, default=None)
            elif default:
                flag = flag or f"--no-{name.replace('_', '-')}"
                kwargs.update(action="store_false")
            else:
                kwargs.update(action="store_true")
        elif repeated:
            kwargs.update(action="append", default=[] if default is None else list(default))
            if kind is not str:
                kwargs["type"] = kind
        else:
            kwargs["default"] = default
            if kind is not str:
                kwargs["type"] = kind
        flag = flag or f"--{name.replace('_', '-')}"
        shown = flag.lstrip("-").replace("-", "_").upper()
        if kwargs.get("action") in (None, "append") and shown != name.upper() and "choices" not in meta:
            kwargs["metavar"] = shown  # the help names the value after the flag, not the field
        kwargs.update(meta)
        parser.add_argument(flag, **kwargs)
        dests.append(name)
    return dests


def dataclass_from_args(cls: type, args: argparse.Namespace, **changes: Any):
    """``cls`` from the options :func:`add_dataclass_arguments` added (lists back to tuples) and ``changes``."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in changes or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        values[f.name] = tuple(value) if _unwrap(hints[f.name])[1] and value is not None else value
    return cls(**values, **changes)
