"""One parity.json row: an artifact x runtime judged against the PyTorch reference (or the reference itself).

The harness builds every row as a :class:`Row` (the reference, a runner's, a file that failed its checksum, an
external runner's) and writes :meth:`Row.to_dict` into parity.json. Readers of a parity.json from disk (the
reports, JUnit, the ship decision, ``add_external_rows``) keep reading plain dicts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


class _Unset:
    """A field this row does not have (absent from its JSON, unlike None, which is written as null)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

_IDENTITY = ("artifact", "format", "precision", "runtime", "implementation", "is_reference")
#: Where the run's facts sit in each kind of row: the order parity.json has always listed them in.
_REFERENCE_ORDER = ("checkpoint", "latency_ms", "status", "error", "info", "bytes", "sha256")
_RAN_ORDER = ("bytes", "sha256", "latency_ms", "info", "external", "status", "error")  # ran, or external
_FAILED_ORDER = ("bytes", "sha256", "latency_ms", "status", "error", "info")
_VERDICT = ("n", "gate", "violations", "band", "passed")
_FIELDS = (*_IDENTITY, *_REFERENCE_ORDER, "external", "results", *_VERDICT)


@dataclass(frozen=True)
class Row:
    """An artifact x runtime (or the reference checkpoint); fields left :data:`UNSET` are not written."""

    artifact: str  # path as manifest.json lists it; the checkpoint's file name for the reference
    format: str
    precision: str
    runtime: str
    implementation: str
    is_reference: bool = False
    status: str = "error"  # "ok" | "error"
    error: str | None = None
    checkpoint: str | None = None  # the reference row only
    bytes: int | None = UNSET
    sha256: str | None = UNSET
    latency_ms: float | None = UNSET
    info: Mapping[str, Any] = UNSET
    external: bool = False  # predictions made outside this process (written only when True)
    #: What was measured, written flat into the row: :func:`moleport.parity.compare.compare`'s dict, or the
    #: reference's own ``metrics`` / ``evaluation`` / ``confusion_matrix``.
    results: Mapping[str, Any] = field(default_factory=dict)
    n: int = UNSET
    gate: Any = UNSET  # the gates' description (a string for the reference)
    violations: tuple[str, ...] = UNSET
    band: Mapping[str, Any] | None = None  # reduced-precision rows: flips inside/outside the threshold band
    passed: bool = UNSET

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key(self) -> str:
        """``artifact@runtime/implementation``: the row's name in parity_predictions.npz."""
        return f"{self.artifact}@{self.runtime}/{self.implementation}"

    def replace(self, **changes: Any) -> "Row":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The row as parity.json lists it (same keys, same order as the harness has always written)."""
        if self.is_reference:
            order = _REFERENCE_ORDER
        elif self.ok or self.external:
            order = _RAN_ORDER
        else:
            order = _FAILED_ORDER
        out: dict[str, Any] = {k: getattr(self, k) for k in _IDENTITY}
        for key in order:
            value = getattr(self, key)
            if key == "external" and not value:
                continue
            if value is not UNSET:
                out[key] = dict(value) if key == "info" else value
        out.update(self.results)
        for key in _VERDICT:
            value = getattr(self, key)
            if value is UNSET or key == "band" and value is None:
                continue
            out[key] = list(value) if key == "violations" else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Row":
        """A row from a parity.json-shaped dict; keys that are not fields go to ``results``."""
        known = {k: v for k, v in data.items() if k in _FIELDS and k != "results"}
        if "violations" in known:
            known["violations"] = tuple(known["violations"])
        results = {k: v for k, v in data.items() if k not in _FIELDS}
        return cls(**known, results={**dict(data.get("results") or {}), **results})
