"""moleport checkpoints: weights + ModelSpec + provenance in one ``torch.save`` dict.

Keys: ``format`` (``moleport-checkpoint-v1``), ``state_dict``, ``spec`` (``ModelSpec.to_dict()``),
``architecture``, ``manifest_sha256``, ``metrics``, ``history``, ``epoch``, ``run``, optional
``optimizer`` and ``extra``. Everything is plain Python/tensors so ``torch.load(weights_only=True)``
reads it. Writes are atomic (``moleport.jsonio.atomic_path``: a temporary file in the same folder, then a rename).
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moleport.jsonio import atomic_path
from moleport.models.registry import CHECKPOINT_FORMAT, ModelError, build_model
from moleport.spec import ModelSpec, SpecError

_META_KEYS = ("architecture", "manifest_sha256", "metrics", "history", "epoch", "run", "extra", "format")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit what was asked for."""


@dataclass
class Loaded:
    model: nn.Module  # in eval mode
    spec: ModelSpec
    meta: dict[str, Any] = field(default_factory=dict)  # everything but state_dict/spec/optimizer
    optimizer: dict[str, Any] | None = None


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, without torch.compile's ``_orig_mod.`` prefix."""
    model = getattr(model, "_orig_mod", model)
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: nn.Module, spec: ModelSpec, *, manifest_sha256: str | None,
                    metrics: dict | None = None, history: list | None = None, epoch: int | None = None,
                    run: dict | None = None, optimizer: torch.optim.Optimizer | dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically and return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "state_dict": _plain_state_dict(model), "spec": spec.to_dict(),
        "architecture": spec.architecture, "manifest_sha256": manifest_sha256, "metrics": metrics or {},
        "history": history or [], "epoch": epoch, "run": run or {}, "extra": extra or {},
    }
    if optimizer is not None:
        data["optimizer"] = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    with atomic_path(p, mode=0o644, what="checkpoint") as tmp:  # 0644: checkpoints are meant to be shared
        with open(tmp, "wb") as f:
            torch.save(data, f)
    return p


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated for format and required keys."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    if not zipfile.is_zipfile(p):
        raise CheckpointError(f"{p}: corrupt or truncated checkpoint (not a torch.save zip archive)")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{p}: holds objects that safe (weights_only) loading refuses; "
                              "moleport checkpoints contain only tensors and plain Python values") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{p}: corrupt or truncated checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{p}: not a moleport checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    missing = [k for k in ("state_dict", "spec", "architecture") if k not in data]
    if missing:
        raise CheckpointError(f"{p}: moleport checkpoint is missing {missing}")
    return data


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    expected_arch: str | None = None) -> Loaded:
    """Rebuild the model of a checkpoint (eval mode) with its ModelSpec and metadata."""
    data = read_checkpoint(path, map_location)
    try:
        spec = ModelSpec.from_dict(dict(data["spec"]), source=f"{path} spec")
    except SpecError as exc:
        raise CheckpointError(f"{path}: invalid ModelSpec ({exc})") from exc
    arch = data["architecture"]
    if spec.architecture != arch:
        raise CheckpointError(f"{path}: spec says {spec.architecture!r} but checkpoint says {arch!r}")
    if expected_arch is not None and arch != expected_arch:
        raise CheckpointError(f"{path}: architecture mismatch: checkpoint holds {arch!r}, expected {expected_arch!r}")
    try:
        model = build_model(arch)
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: state_dict does not fit architecture {arch!r}: "
                              f"{str(exc).splitlines()[0]}") from exc
    model.to(map_location).eval()
    meta = {k: data.get(k) for k in _META_KEYS}
    return Loaded(model=model, spec=spec, meta=meta, optimizer=data.get("optimizer"))
