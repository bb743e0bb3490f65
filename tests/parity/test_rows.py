"""parity.rows.Row: fields left unset are not written, and each kind of row keeps parity.json's key order."""
from __future__ import annotations

from moleport.parity.rows import UNSET, Row

IDENTITY = ["artifact", "format", "precision", "runtime", "implementation", "is_reference"]


def _row(**kw) -> Row:
    return Row(artifact="m.onnx", format="onnx", precision="fp32", runtime="onnxruntime", implementation="ort", **kw)


def test_a_row_that_ran_lists_its_facts_then_its_results_then_its_verdict():
    row = _row(bytes=10, sha256="ab", latency_ms=None, info={"threads": 1}, status="ok",
               results={"n": 0, "max_abs_dp": 0.0}, n=5, gate="fp32", violations=(), passed=True)
    d = row.to_dict()
    assert list(d) == [*IDENTITY, "bytes", "sha256", "latency_ms", "info", "status", "error", "n", "max_abs_dp",
                       "gate", "violations", "passed"]
    assert d["n"] == 5 and d["latency_ms"] is None and d["violations"] == [] and "band" not in d


def test_a_failed_row_lists_info_after_the_error_and_leaves_out_what_it_never_had():
    d = _row(bytes=10, sha256="ab", error="cannot load", info={"threads": 1}).to_dict()
    assert list(d) == [*IDENTITY, "bytes", "sha256", "status", "error", "info"]
    assert d["status"] == "error" and "external" not in d


def test_reference_and_external_rows():
    ref = Row(artifact="c.pt", format="pytorch", precision="fp32", runtime="torch", implementation="eager",
              is_reference=True, checkpoint=None, error="no checkpoint")
    assert list(ref.to_dict()) == [*IDENTITY, "checkpoint", "status", "error"]
    ext = _row(bytes=1, sha256="x", latency_ms=2.0, info={}, external=True, error="boom")
    assert list(ext.to_dict()) == [*IDENTITY, "bytes", "sha256", "latency_ms", "info", "external", "status", "error"]
    assert ext.key == "m.onnx@onnxruntime/ort"


def test_from_dict_round_trips_and_keeps_unknown_keys_as_results():
    d = _row(bytes=10, sha256="ab", latency_ms=1.0, info={}, status="ok", results={"flips": 0}, n=3, gate="g",
             violations=("v",), band={"band": 0.1}, passed=False).to_dict()
    back = Row.from_dict(d)
    assert back.to_dict() == d and back.results == {"flips": 0} and back.violations == ("v",)
    assert Row.from_dict({k: d[k] for k in IDENTITY}).latency_ms is UNSET
