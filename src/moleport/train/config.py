"""Run configurations: Table 2 of the paper (``runs.json``) and the non-paper ``quick`` profile."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moleport.argtypes import cli
from moleport.models import ARCHITECTURES
from moleport.paths import artifacts_dir
from moleport.spec import COLOR_CONSTANCY_RULES, TTA_RULES

RUNS_FILE = Path(__file__).with_name("runs.json")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16")  # autocast of the forward pass only; weights and checkpoints stay fp32
#: Bias correction of the int8 backbone (moleport.train.qat): never, always, or only when PTQ without it meets no target
BIAS_CORRECTION_MODES = ("off", "on", "auto")


class ConfigError(ValueError):
    """A run name or run configuration is invalid."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs. ``out_dir`` is the run's own folder."""

    # ``cli(...)``: the field's ``moleport train`` option (moleport.train.cli), which overrides the run's value.
    name: str
    arch: str = field(metadata=cli("architecture from moleport.models (overrides the run's)",
                                   choices=sorted(ARCHITECTURES)))
    epochs: int = field(metadata=cli("override the run's epochs"))
    batch_size: int
    lr: float
    weights: str | None = field(  # None/"none", "imagenet" or a state_dict path
        default=None, metadata=cli("none | imagenet | PATH to a state_dict (overrides the run's)"))
    schedule: str = "constant"  # constant (the paper), cosine or onecycle (per step)
    augment: bool = field(  # random flips / 90-degree rotations
        default=False, metadata=cli("random flips and 90-degree rotations", action="store_true", default=False))
    jitter: float = field(  # per-image brightness/contrast/saturation factors in [1-jitter, 1+jitter]; 0 = off
        default=0.0, metadata=cli("colour jitter amount (brightness/contrast/saturation ±x)"))
    acquisition: float = field(  # moleport.train.data.acquisition_shift strength; 0 = off
        default=0.0, metadata=cli("acquisition-shift augmentation strength in [0, 1] (zoom/rotation, resolution loss, "
                                  "gamma, white balance, dermoscope vignette, noise); 0 = off"))
    freeze_blocks: int = field(  # model.features[:k] frozen (no gradients, eval-mode BatchNorm); 0 = train all
        default=0, metadata=cli("freeze model.features[:N]"))
    color_constancy: str | None = field(  # ModelSpec.color_constancy of the trained model (e.g. shades-of-gray-p6)
        default=None, metadata=cli("ModelSpec colour constancy (exports reproduce it in-graph); 'none' turns a "
                                   "profile's off", choices=["none", *COLOR_CONSTANCY_RULES]))
    calibrate: bool = field(  # fit ModelSpec.temperature on val (NLL) before choosing the threshold
        default=False, metadata=cli("fit the spec's temperature on val before choosing the threshold"))
    tta: str | None = field(  # ModelSpec.tta of the trained model: temperature and threshold are chosen through it
        default=None, metadata=cli("ModelSpec test-time augmentation (exports average the views in-graph); the "
                                   "final val pass, temperature and threshold go through it; 'none' turns a "
                                   "profile's off", choices=["none", *TTA_RULES]))
    early_stop_train_acc: float | None = 0.95  # the paper's rule; None disables it
    seed: int = field(default=0, metadata=cli("override the run's seed"))
    input_size: int = 224
    out_dir: Path | None = None  # default artifacts/train/<name>
    device: str = field(default="auto", metadata=cli("auto | cpu | cuda | cuda:N", default="auto"))
    limit: int | None = field(  # first N images of every split (smoke runs)
        default=None, metadata=cli("first N images of each split (smoke runs)"))
    compile: bool = field(  # torch.compile on CUDA
        default=False, metadata=cli("torch.compile the model (CUDA only)", action="store_true", default=False))
    precision: str = field(  # forward autocast: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 (CPU: needs AVX512-BF16/AMX)
        default="auto", metadata=cli("forward autocast: auto = bf16 on CUDA, fp32 on CPU (default); bf16 on CPU needs "
                                     "AVX512-BF16/AMX; weights and checkpoints stay fp32", choices=list(PRECISIONS)))
    resume: bool = field(default=False, metadata=cli("continue an interrupted run from its last.pt",
                                                     action="store_true", default=False))
    target_sensitivity: float = field(  # melanoma sensitivity the threshold is chosen for on VAL
        default=0.95, metadata=cli("melanoma sensitivity the val threshold is chosen for (default: the run's, 0.95)"))
    sensitivity_confidence: float | None = field(  # None: the point rule (val sensitivity >= target)
        default=None, metadata=cli("choose the val threshold so that the one-sided Clopper-Pearson lower bound on "
                                   "its sensitivity, at this confidence (e.g. 0.95), is >= the target (default: the "
                                   "run's; without it val sensitivity itself is >= the target)"))
    paper: bool = False
    paper_accuracy: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"run {self.name!r}: unknown arch {self.arch!r}; choose one of {sorted(ARCHITECTURES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"run {self.name!r}: epochs, batch_size and lr must be positive")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"run {self.name!r}: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.early_stop_train_acc is not None and not 0 < self.early_stop_train_acc <= 1:
            raise ConfigError(f"run {self.name!r}: early_stop_train_acc must be in (0, 1] or null")
        if not 0.0 < self.target_sensitivity < 1.0:
            raise ConfigError(f"run {self.name!r}: target_sensitivity must be within (0, 1), got {self.target_sensitivity}")
        if self.sensitivity_confidence is not None and not 0.0 < self.sensitivity_confidence < 1.0:
            raise ConfigError(f"run {self.name!r}: sensitivity_confidence must be null or within (0, 1), got "
                              f"{self.sensitivity_confidence}")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"run {self.name!r}: jitter must be within [0, 1), got {self.jitter}")
        if not 0.0 <= self.acquisition <= 1.0:
            raise ConfigError(f"run {self.name!r}: acquisition must be within [0, 1], got {self.acquisition}")
        if self.freeze_blocks < 0:
            raise ConfigError(f"run {self.name!r}: freeze_blocks must be >= 0, got {self.freeze_blocks}")
        if self.color_constancy is not None and self.color_constancy not in COLOR_CONSTANCY_RULES:
            raise ConfigError(f"run {self.name!r}: color_constancy must be null or one of {COLOR_CONSTANCY_RULES}, "
                              f"got {self.color_constancy!r}")
        if self.tta is not None and self.tta not in TTA_RULES:
            raise ConfigError(f"run {self.name!r}: tta must be null or one of {TTA_RULES}, got {self.tta!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"run {self.name!r}: precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"run {self.name!r}: limit must be >= 1")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir is not None else artifacts_dir() / "train" / self.name

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.run_dir)
        return d


def _from_entry(entry: dict[str, Any]) -> RunConfig:
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(f"{RUNS_FILE}: run {entry.get('name')!r} has unknown field(s) {unknown}")
    return RunConfig(**entry)


def load_runs(path: str | Path = RUNS_FILE) -> dict[str, RunConfig]:
    """All runs and profiles by name, Table 2 first (in the paper's order)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, RunConfig] = {}
    for entry in [*data.get("runs", []), *data.get("profiles", [])]:
        cfg = _from_entry(entry)
        if cfg.name in out:
            raise ConfigError(f"{path}: run name {cfg.name!r} appears twice")
        out[cfg.name] = cfg
    return out


def paper_runs() -> list[RunConfig]:
    return [r for r in load_runs().values() if r.paper]


def get_run(name: str) -> RunConfig:
    runs = load_runs()
    if name not in runs:
        raise ConfigError(f"unknown run {name!r}; choose one of {list(runs)}")
    return runs[name]
