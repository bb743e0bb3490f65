"""The dependency rule of docs/CONTRACTS.md, read from the source with ``ast`` (every import, also those inside
functions): the judges (parity, evaluate) and the runtimes layer never import the code they judge (export) or the
training stage; export needs a checkpoint and a spec, not the training loop; the small shared modules import no
stage at all."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "moleport"
STAGES = ("data", "models", "train", "export", "runtimes", "parity", "evaluate", "calibrate", "apps")
SHARED = ("spec", "preprocess", "metrics", "jsonio", "paths", "argtypes", "quiet", "calibration", "procstate")

#: package (or module) -> moleport packages it must never import
FORBIDDEN = {
    "parity": ("train", "export", "pipeline", "cli"),
    "evaluate": ("train", "export", "pipeline", "cli"),
    "runtimes": ("train", "export", "parity", "evaluate", "pipeline", "cli"),
    "export": ("train", "parity", "evaluate", "pipeline", "cli"),
    "calibrate": ("train", "export", "pipeline", "cli"),  # re-judges a bundle; re-exports nothing
    **{m: (*STAGES, "pipeline", "cli") for m in SHARED},
}


def moleport_imports(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """(line, dotted module) of every ``moleport.*`` import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("moleport", *path.relative_to(root).with_suffix("").parts))
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if base == "moleport"]
    return [(line, name) for line, name in out if name == "moleport" or name.startswith("moleport.")]


def owner(path: Path, root: Path = SRC) -> str:
    """The top-level package or module of moleport that ``path`` belongs to."""
    return path.relative_to(root).parts[0].removesuffix(".py")


def violations(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        banned = FORBIDDEN.get(owner(path, root), ())
        for line, name in moleport_imports(path, root):
            target = name.split(".")[1] if "." in name else ""
            if target in banned:
                found.append(f"{path.relative_to(root.parent)}:{line}: {owner(path, root)} imports {name}")
    return found


def test_the_dependency_rule_holds():
    assert violations() == []


def test_every_package_is_covered_by_the_rule():
    """A new top-level package must be placed in the rule (as a stage or a shared module) on purpose."""
    known = {*STAGES, *SHARED, "pipeline", "cli", "bench", "predict", "__init__", "__main__"}
    present = {p.name.removesuffix(".py") for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert present - known == set()


@pytest.mark.parametrize("source, expected", [
    ("from moleport.train.loop import train_run\n", "imports moleport.train.loop"),
    ("def f():\n    import moleport.export.bundle\n", "imports moleport.export.bundle"),
    ("from ..export import formats\n", "imports moleport.export"),
    ("from moleport import train\n", "imports moleport.train"),
])
def test_the_checker_sees_every_kind_of_import(tmp_path, source, expected):
    fake = tmp_path / "moleport"
    (fake / "parity").mkdir(parents=True)
    (fake / "parity" / "bad.py").write_text(source, encoding="utf-8")
    (fake / "parity" / "good.py").write_text("from moleport.runtimes import discover\nfrom . import gates\n",
                                             encoding="utf-8")
    found = violations(fake)
    assert len(found) == 1 and expected in found[0]
