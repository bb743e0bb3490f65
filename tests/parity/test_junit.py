"""JUnit XML and CI step summary of a parity payload (hand-built payloads; the CLI with run_parity stubbed)."""
from __future__ import annotations

import argparse
import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from moleport.parity import cli as parity_cli
from moleport.parity.junit import render_ci_summary, write_ci_summary, write_junit_xml

V1 = "model_int8.tflite @ litert (LiteRT 1.2 XNNPACK): int8 label flips 3 > 1 (of 20)"
V2 = "model_int8.tflite @ litert (LiteRT 1.2 XNNPACK): int8 |Δ accuracy| 5.00 pp > 2 pp"


def _row(artifact, fmt, precision, runtime, *, passed=True, violations=(), dp=1e-6, flips=0, latency=2.5):
    return {"artifact": artifact, "format": fmt, "precision": precision, "runtime": runtime,
            "implementation": f"{runtime} impl", "is_reference": False, "status": "ok", "error": None,
            "passed": passed, "violations": list(violations), "max_abs_dp": dp, "flips": flips,
            "latency_ms": latency, "n": 20, "gate": "some gate"}


def make_payload() -> dict:
    ref = {**_row("checkpoint.pt", "pytorch", "fp32", "torch", dp=None, flips=None), "is_reference": True,
           "gate": "reference"}
    rows = [ref,
            _row("model_fp32.onnx", "onnx", "fp32", "onnxruntime", dp=3e-7),
            _row("model_fp32.tflite", "tflite", "fp32", "litert", dp=8e-7, latency=4.0),
            _row("model_int8.tflite", "tflite", "int8", "litert", passed=False, violations=[V1, V2], dp=0.21,
                 flips=3, latency=1.5)]
    artifacts = {"model_fp32.onnx": {"passed": True, "runtimes": {"onnxruntime": True}, "precision": "fp32",
                                     "format": "onnx"},
                 "model_fp32.tflite": {"passed": True, "runtimes": {"litert": True}, "precision": "fp32",
                                       "format": "tflite"},
                 "model_int8.tflite": {"passed": False, "runtimes": {"litert": False}, "precision": "int8",
                                       "format": "tflite"}}
    return {"passed": False, "violations": [V1, V2], "problems": [], "rows": rows, "artifacts": artifacts,
            "bundle": "/tmp/bundle", "split": "test", "n": 20, "created": "2024-01-01T00:00:00+00:00",
            "notes": ["coreml: skipped (not macOS)"], "gates": {"int8_max_abs_dacc_pp": 2.0}}


def _suite(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "moleport parity"
    return suites[0]


def test_junit_counts_and_failure_message(tmp_path):
    path = write_junit_xml(make_payload(), tmp_path / "reports" / "parity-junit.xml")
    assert path == tmp_path / "reports" / "parity-junit.xml"
    suite = _suite(path)
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "3", "failures": "1", "errors": "0", "skipped": "0"}
    assert float(suite.get("time")) == pytest.approx(0.008)
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("parity.onnx.fp32", "model_fp32.onnx @ onnxruntime"),
        ("parity.tflite.fp32", "model_fp32.tflite @ litert"),
        ("parity.tflite.int8", "model_int8.tflite @ litert")]
    assert cases[0].find("failure") is None and cases[1].find("failure") is None
    failure = cases[2].find("failure")
    assert failure.get("message").splitlines() == [V1, V2]
    assert failure.text.splitlines() == [V1, V2]
    assert float(cases[2].get("time")) == pytest.approx(0.0015)


def test_junit_problems_errors_and_bad_characters(tmp_path):
    payload = make_payload()
    payload["problems"] = ["model_fp16.tflite: listed in manifest.json but missing"]
    broken = _row("model_fp16.onnx", "onnx", "fp16", "onnxruntime", passed=False, dp=None, flips=None,
                  latency=None)
    broken.update(status="error", error="load failed: \x1b[31mInvalid graph\x00", violations=[])
    payload["rows"].append(broken)
    payload["rows"][0].update(status="error", passed=False, violations=["reference: checkpoint missing"])
    suite = _suite(write_junit_xml(payload, tmp_path / "j.xml"))
    assert {k: suite.get(k) for k in ("tests", "failures", "errors")} == {"tests": "6", "failures": "2",
                                                                          "errors": "2"}
    by_class = {c.get("classname"): c for c in suite.findall("testcase")}
    assert "checkpoint missing" in by_class["parity.reference"].find("error").get("message")
    assert "Invalid graph" in by_class["parity.onnx.fp16"].find("error").get("message")
    assert "missing" in by_class["parity.bundle"].find("failure").get("message")


def test_junit_all_passed_and_duplicate_names(tmp_path):
    payload = make_payload()
    payload["rows"] = payload["rows"][:2] + [copy.deepcopy(payload["rows"][1])]
    payload["rows"][2]["implementation"] = "onnxruntime other"
    payload.update(passed=True, violations=[])
    suite = _suite(write_junit_xml(payload, tmp_path / "j.xml"))
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    names = [c.get("name") for c in suite.findall("testcase")]
    assert len(set(names)) == 2 and all("(" in n for n in names)


def test_ci_summary_verdict_table_and_violations(tmp_path):
    text = render_ci_summary(make_payload())
    lines = text.splitlines()
    assert lines[0].startswith("### ❌ Parity FAILED: 1 of 3")
    assert "2 violation(s)" in lines[0]
    assert "| artifact | precision | runtimes | max \\|Δp\\| | flips | verdict |" in lines
    int8 = next(line for line in lines if line.startswith("| `model_int8.tflite`"))
    assert "| int8 |" in int8 and "litert FAIL" in int8 and "2.10e-01" in int8 and "| 3 |" in int8
    assert int8.endswith("❌ FAIL |")
    assert sum(1 for line in lines if line.startswith("| `")) == 3
    assert f"- {V1}" in lines and f"- {V2}" in lines
    path = tmp_path / "summary.md"
    path.write_text("earlier step\n")
    write_ci_summary(make_payload(), path, append=True)
    assert path.read_text() == "earlier step\n" + text
    write_ci_summary({**make_payload(), "passed": True, "violations": []}, path)
    assert path.read_text().startswith("### ✅ Parity PASSED")


def _args(tmp_path, *extra) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parity_cli.register(parser.add_subparsers())
    return parser.parse_args(["parity", str(tmp_path / "bundle"), *extra])


@pytest.mark.parametrize("passed", [True, False])
def test_cli_writes_ci_files(tmp_path, monkeypatch, capsys, passed):
    import moleport.parity.harness as harness

    payload = {**make_payload(), "bundle": str(tmp_path / "bundle")}
    if passed:
        payload["rows"] = payload["rows"][:3]
        payload.update(passed=True, violations=[])
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "parity.md").write_text("## Parity\n")
    monkeypatch.setattr(harness, "run_parity", lambda *a, **k: payload)
    step = tmp_path / "step_summary.md"
    step.write_text("before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    rc = parity_cli.run(_args(tmp_path, "--junit-xml", str(tmp_path / "out" / "junit.xml")))
    assert rc == (0 if passed else 1)
    assert _suite(tmp_path / "out" / "junit.xml").get("failures") == ("0" if passed else "1")
    summary = step.read_text()
    assert summary.startswith("before\n### " + ("✅" if passed else "❌"))
    explicit = tmp_path / "s.md"
    assert parity_cli.run(_args(tmp_path, "--ci-summary", str(explicit))) == rc
    assert explicit.read_text() == summary[len("before\n"):]
    capsys.readouterr()


def test_cli_error_still_writes_failing_junit(tmp_path, monkeypatch, capsys):
    import moleport.parity.harness as harness
    from moleport.runtimes.bundle import BundleError

    def boom(*a, **k):
        raise BundleError("no manifest.json")

    monkeypatch.setattr(harness, "run_parity", boom)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    rc = parity_cli.run(_args(tmp_path, "--junit-xml", str(tmp_path / "j.xml"), "--ci-summary", ""))
    assert rc == 2
    suite = _suite(tmp_path / "j.xml")
    assert suite.get("failures") == "1" and "no manifest.json" in suite.find("testcase/failure").get("message")
    assert "no manifest.json" in capsys.readouterr().err


def test_allow_rejected_exits_zero_only_when_the_required_artifacts_pass(tmp_path, monkeypatch, capsys):
    import moleport.parity.harness as harness

    from moleport.parity.harness import tally

    payload = tally({**make_payload(), "bundle": str(tmp_path / "bundle")})
    assert payload["required_passed"] is True and payload["rejected"] == ["model_int8.tflite"]
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "parity.md").write_text("## Parity\n")
    monkeypatch.setattr(harness, "run_parity", lambda *a, **k: payload)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert parity_cli.run(_args(tmp_path)) == 1
    assert parity_cli.run(_args(tmp_path, "--allow-rejected")) == 0
    assert "1 optional artifact(s) rejected" in capsys.readouterr().err
    assert render_ci_summary(payload).startswith("### ✅ Parity PASSED for fp32/fp16 · ⚠️ 1 optional")
    broken = tally({**payload, "problems": ["spec.json: sha256 mismatch"]})
    monkeypatch.setattr(harness, "run_parity", lambda *a, **k: broken)
    assert parity_cli.run(_args(tmp_path, "--allow-rejected")) == 1
    assert "parity FAILED" in capsys.readouterr().err
