"""Pins live in pyproject.toml only (issue 14, item 5): the Makefile reads onnx2tf's pin from `[tool.moleport]
no-deps` instead of carrying its own, pytest is a test extra and not a runtime dependency, and CI runs exactly the
README's test command."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _name(req: str) -> str:
    return re.split(r"[=<>!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _recipe(target: str) -> str:
    m = re.search(rf"^{re.escape(target)}\s*:[^=\n]*\n((?:\t.*\n?)*)", MAKEFILE, re.M)
    assert m, f"no rule for {target} in the Makefile"
    return m.group(1)


def test_every_requirement_is_pinned_exactly():
    extras = PYPROJECT["project"].get("optional-dependencies", {})
    reqs = [*PYPROJECT["project"]["dependencies"], *(r for rs in extras.values() for r in rs),
            *PYPROJECT["tool"]["moleport"]["no-deps"]]
    loose = [r for r in reqs if not re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", r)]
    assert not loose, f"not pinned with ==: {loose}"


def test_no_deps_pins_are_read_by_the_makefile_not_repeated():
    no_deps = PYPROJECT["tool"]["moleport"]["no-deps"]
    assert [_name(r) for r in no_deps] == ["onnx2tf"]
    recipe = _recipe("$(STAMP)")
    line = next(ln for ln in recipe.splitlines() if "--no-deps" in ln)
    assert '["tool"]["moleport"]["no-deps"]' in line
    for req in no_deps:  # the Makefile names no version of its own
        assert not re.search(rf"{_name(req)}\s*==", MAKEFILE, re.I), f"{_name(req)} is pinned in the Makefile too"
    # run the Makefile's own reader: it must print exactly the pyproject pins
    code = re.search(r"-c '([^']+)'", line).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == no_deps
    # and these are not also ordinary dependencies (pip would resolve their conflicting requirements)
    deps = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not deps & {_name(r) for r in no_deps}


def test_readme_names_the_pinned_onnx2tf():
    (req,) = PYPROJECT["tool"]["moleport"]["no-deps"]
    version = req.split("==")[1]
    assert f"onnx2tf {version}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_pytest_is_a_test_extra_installed_by_make_install():
    deps = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    test = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert "pytest" in test and "pytest" not in deps
    assert re.search(r'pip install -q -e "\.\[test\]"', _recipe("$(STAMP)"))


def test_no_module_under_src_imports_test_only_packages():
    test_only = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]} | {"_pytest"}
    bad = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                    if n.split(".")[0].replace("_", "-") in test_only]
    assert not bad, "\n".join(bad)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = re.search(r"## Set-up: two commands\s+```bash\n(.*?)```", readme, re.S).group(1).split("\n")
    assert "make test" in [ln.strip() for ln in setup]
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if ln.strip() and not ln.lstrip().startswith("#")]
    assert ci[-1] == "make test" and sum("make " in ln for ln in ci) == 1
    assert _recipe("test").strip() == "$(VPY) -m pytest -q tests"
