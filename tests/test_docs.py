"""The command log must not drift (issue 14, item 5): every command quoted in the README and the docs is a Makefile
target or a line that runs from the repository root as written. Read from the Markdown: every `make TARGET` names a
target of the Makefile, no doc names an absolute path of this machine, every `python -m moleport.X` module exists,
every `moleport SUB ...` sub-command exists and every `--flag` quoted after one of them (or in a make target's
*_ARGS variable) is one its parser knows."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted({ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "android_demo" / "README.md",
               ROOT / "web_demo" / "README.md", ROOT / "artifacts" / "README.md"})
FORBIDDEN_PATHS = ("/work/", "/tmp/", "/home/", "/root/")

#: make variable holding extra flags -> the command those flags go to (see the Makefile)
ARGS_VARIABLES = {"EXPORT_ARGS": "moleport.pipeline", "TRAIN_ARGS": "moleport.cli train",
                  "EVAL_ARGS": "moleport.cli evaluate", "ABLATION_ARGS": "moleport.train.ablation",
                  "GPU_CHECK_ARGS": "moleport.train.gpu_check"}


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def code_snippets(text: str) -> list[str]:
    """Fenced blocks (one entry per logical line, backslash continuations joined) and inline code spans."""
    out: list[str] = []
    fenced = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
    for block in fenced.findall(text):
        # a continuation line may be commented like the line it continues ("# = python -m ... \\" / "#   --out D")
        out += [line for line in re.sub(r"\\\n\s*(?:#\s)?", " ", block).splitlines() if line.strip()]
    out += re.findall(r"`([^`]+)`", fenced.sub("", text))
    return [" ".join(s.split()) for s in out]


@cache
def snippets() -> dict[str, list[str]]:
    return {_rel(p): code_snippets(p.read_text(encoding="utf-8")) for p in DOCS}


@cache
def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)", text, re.M))
    for phony in re.findall(r"^\.PHONY:((?:.*\\\n)*.*)$", text, re.M):
        targets |= set(phony.replace("\\\n", " ").split())
    return targets


def make_commands() -> list[tuple[str, str, str]]:
    """(doc, snippet, target) for every `make TARGET ...` in a code snippet."""
    found = []
    for doc, snips in snippets().items():
        for s in snips:
            for m in re.finditer(r"(?:^|(?<=[\s;(&|]))make((?:\s+\S+)*)", s):
                words = [w for w in m.group(1).split() if "=" not in w and not w.startswith("-")]
                if words and re.fullmatch(r"[a-z][a-z0-9-]*", words[0]):
                    found.append((doc, s, words[0]))
    return found


#: the start of a quoted moleport command: `python -m moleport.X`, `-m moleport.cli SUB`, `moleport SUB`
COMMAND = re.compile(r"(?:(?<![\w./-])-m\s+(moleport(?:\.\w+)+)|(?<![\w./-])moleport(?=\s+[a-z]))")


def moleport_commands() -> list[tuple[str, str, str, str]]:
    """(doc, module, text after it, snippet): module is 'moleport.cli' for the console script."""
    found = []
    for doc, snips in snippets().items():
        for s in snips:
            starts = list(COMMAND.finditer(s))
            for i, m in enumerate(starts):
                end = starts[i + 1].start() if i + 1 < len(starts) else len(s)
                # a make command or a shell separator ends the quoted command
                rest = re.split(r"\s(?:make\s|&&|\|\||;|#\s)", s[m.end():end] + " ")[0]
                found.append((doc, m.group(1) or "moleport.cli", rest, s))
    return found


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


@cache
def module_parser(module: str) -> argparse.ArgumentParser | None:
    """The argparse parser a `python -m MODULE` builds (caught at parse_args), None without a main(argv)."""
    if module == "moleport.cli":
        from moleport.cli import build_parser

        return build_parser()
    main = getattr(importlib.import_module(module), "main", None)
    if main is None:
        return None
    orig = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = grab
    try:
        main([])
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_args = orig
    return None


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(module: str, rest: str) -> tuple[argparse.ArgumentParser | None, list[str], str]:
    """The (sub-)parser the words in ``rest`` select, the flags quoted after it, and the command's name."""
    parser, name = module_parser(module), module
    words = rest.split()
    while parser is not None and words and _subparsers(parser):
        subs = _subparsers(parser)
        if words[0] not in subs:
            raise AssertionError(f"`{name}` has no sub-command {words[0]!r} (it has {sorted(subs)})")
        parser, name = subs[words[0]], f"{name} {words[0]}"
        words = words[1:]
    flags = [m.group(0) for m in (re.match(r"--[a-z][a-z0-9-]*", w.lstrip("[")) for w in words) if m]
    return parser, flags, name


def _flags_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def test_docs_are_found_and_quote_commands():
    assert len(DOCS) >= 6 and all(p.is_file() for p in DOCS)
    assert len(make_commands()) > 20 and len(moleport_commands()) > 20


def test_every_quoted_make_target_exists():
    targets = makefile_targets()
    missing = sorted({f"{doc}: make {t}  (in `{s}`)" for doc, s, t in make_commands() if t not in targets})
    assert not missing, "make targets quoted in the docs that the Makefile lacks:\n" + "\n".join(missing)


def test_readme_documents_every_phony_target():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = set(re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", text, re.M).group(1).replace("\\\n", " ").split())
    quoted = {t for doc, _, t in make_commands() if doc == "README.md"}
    assert {"grid", "ablation", "evaluate"} <= phony
    assert not phony - quoted, f"Makefile targets the README does not mention: {sorted(phony - quoted)}"


@pytest.mark.parametrize("doc", [_rel(p) for p in DOCS])
def test_no_absolute_machine_paths(doc):
    bad = [f"line {i}: {line.strip()}" for i, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), 1)
           if any(p in line for p in FORBIDDEN_PATHS)]
    assert not bad, f"{doc} names absolute paths (use ../shared/..., artifacts/...):\n" + "\n".join(bad)


def test_quoted_python_modules_exist():
    modules = sorted({mod for _, mod, _, _ in moleport_commands()})
    assert "moleport.pipeline" in modules and "moleport.train.ablation" in modules
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    assert not missing, f"`python -m` modules quoted in the docs that do not exist: {missing}"


def test_quoted_commands_use_existing_subcommands_and_flags():
    problems = []
    for doc, module, rest, snippet in moleport_commands():
        try:
            parser, flags, name = resolve(module, rest)
        except AssertionError as exc:
            problems.append(f"{doc}: {exc}  (in `{snippet}`)")
            continue
        if parser is None:
            continue
        unknown = [f for f in flags if f not in _flags_of(parser)]
        if unknown:
            problems.append(f"{doc}: `{name}` has no {unknown}  (in `{snippet}`)")
    assert not problems, "\n".join(problems)


def test_make_args_variables_carry_flags_their_command_knows():
    problems, seen = [], 0
    for doc, snips in snippets().items():
        for s in snips:
            for var, value in re.findall(r"\b([A-Z_]+_ARGS)=(\"[^\"]*\"|'[^']*'|\S+)", s):
                if var not in ARGS_VARIABLES:
                    continue
                seen += 1
                module, _, rest = ARGS_VARIABLES[var].partition(" ")
                parser, _, name = resolve(module, rest)
                flags = re.findall(r"(?<!\S)--[a-z][a-z0-9-]*", value.strip("\"'"))
                unknown = [f for f in flags if f not in _flags_of(parser)]
                if unknown:
                    problems.append(f"{doc}: {var} goes to `{name}`, which has no {unknown}  (in `{s}`)")
    assert seen >= 4
    assert not problems, "\n".join(problems)
