"""The training loop: Adam, BCEWithLogitsLoss on one logit, best weights by VALIDATION accuracy.

Modelled on torchvision's references/classification: one plain epoch function, a checkpoint
(``last.pt``) after every epoch for ``--resume``, ``best.pt`` whenever validation accuracy improves,
and at the end ``checkpoint.pt`` (best weights, the ModelSpec with the threshold chosen on VAL for
the target melanoma sensitivity) with ``metrics.json`` and the figures (see :mod:`.report`).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moleport.data.manifest import Manifest, load_manifest
from moleport.models import ModelError, build_model, freeze_prefix, get_architecture, set_train_mode
from moleport.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from moleport.spec import ModelSpec
from moleport.train.config import RunConfig
from moleport.train.data import (SplitTensors, acquisition_shift, augment, colour_jitter, epoch_batches, load_tensors,
                                 predict_logits, to_input)


class TrainError(RuntimeError):
    """A run cannot start or resume; the message says why."""


@dataclass
class State:
    """What survives an interruption (stored in ``last.pt``'s ``extra``)."""

    epoch: int = 0  # epochs completed
    step: int = 0
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)

    def to_extra(self) -> dict:
        return {"step": self.step, "best_val_acc": self.best_val_acc, "best_val_loss": self.best_val_loss,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"device {name!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(cfg: RunConfig, step: int, total: int) -> float:
    """Learning rate for optimizer step ``step`` of ``total`` (a pure function, so resume is exact)."""
    if cfg.schedule == "constant":
        return cfg.lr
    t = min(step / max(total - 1, 1), 1.0)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    warm = 0.25  # one-cycle: cosine warm-up from lr/25, then cosine annealing to lr/1e4
    lo, end = cfg.lr / 25.0, cfg.lr / 1e4
    if t < warm:
        return lo + (cfg.lr - lo) * 0.5 * (1.0 - math.cos(math.pi * t / warm))
    return end + (cfg.lr - end) * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1.0 - warm)))


def _bce_and_acc(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y.float().cpu()).item()
    acc = ((logits >= 0).float() == y.cpu()).float().mean().item()
    return loss, acc


def train_one_epoch(model: nn.Module, step_fn, opt: torch.optim.Optimizer, data: SplitTensors, spec: ModelSpec,
                    cfg: RunConfig, device: torch.device, state: State, total_steps: int,
                    ctx=None) -> tuple[float, float]:
    """One pass over the training split; returns (mean loss, accuracy at logit 0) over all ranks.

    Data-parallel (``ctx.world > 1``): every rank walks the same global batches and trains on its share.
    """
    from tqdm import tqdm

    from moleport.train.distributed import SOLO

    ctx = ctx or SOLO
    set_train_mode(model, cfg.freeze_blocks)
    torch.manual_seed(cfg.seed * 7919 + state.epoch)  # dropout/augmentation reproducible on resume
    batches = epoch_batches(len(data), cfg.batch_size, cfg.seed, state.epoch, ctx.world)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    for batch in tqdm(batches, desc=f"{cfg.name} epoch {state.epoch + 1}/{cfg.epochs}", unit="batch", leave=False,
                      disable=not ctx.is_main):
        idx = ctx.take(batch)
        idx_dev = idx.to(data.x.device)
        x_u8 = data.x[idx_dev]
        x = colour_jitter(x_u8.to(device), cfg.jitter) if cfg.jitter else x_u8
        x = to_input(acquisition_shift(x.to(device).float(), cfg.acquisition) if cfg.acquisition else x, spec, device)
        y = data.y[idx_dev].to(device, non_blocking=True)
        if cfg.augment:
            x = augment(x)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, state.step, total_steps)
        loss, logits = step_fn(x, y, len(batch))
        loss_sum += loss.detach() * (len(batch) / ctx.world)  # = this rank's summed loss (see make_step_fn)
        correct += ((logits.detach() >= 0).float() == y).sum()
        seen += len(idx)
        state.step += 1
    loss_total, correct_total, seen_total = ctx.all_sum([loss_sum.item(), correct.item(), seen], device)
    return loss_total / seen_total, correct_total / seen_total


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 (AVX512-BF16 or AMX), the case where CPU autocast pays off."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The forward pass's autocast dtype (None = fp32). ``auto``: bf16 on CUDA, fp32 on CPU."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type == "cpu" and not cpu_supports_bf16():
        raise TrainError("precision bf16 on CPU needs AVX512-BF16 or AMX, which this processor lacks; use fp32")
    return torch.bfloat16


def make_step_fn(model: nn.Module, opt: torch.optim.Optimizer, device: torch.device, compile_: bool,
                 precision: str = "auto", world: int = 1):
    """(x, y, global_n) -> (loss, logits[N]); forward under :func:`autocast_dtype`, optionally torch.compile'd.

    Single process: the mean BCE of the batch. Data-parallel (``world > 1``, ``x`` this rank's share of a global
    batch of ``global_n``): ``sum(bce) * world / global_n``, so DDP's gradient average is the global-batch mean's.
    Weights, gradients and optimizer state stay fp32 whatever the autocast dtype.
    """
    forward = torch.compile(model) if (compile_ and device.type == "cuda") else model
    loss_fn = nn.BCEWithLogitsLoss(reduction="mean" if world == 1 else "sum")
    dtype = autocast_dtype(device, precision)

    def step(x: torch.Tensor, y: torch.Tensor, global_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = forward(x).float().reshape(-1)
        loss = loss_fn(logits, y)
        if world > 1:
            loss = loss * (world / (global_n or len(x)))
        loss.backward()
        opt.step()
        return loss, logits

    return step


def _as_manifest(manifest: Manifest | str | Path) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def _resume(cfg: RunConfig, last: Path, model: nn.Module, opt: torch.optim.Optimizer, manifest: Manifest) -> State:
    """Restore model, optimizer and loop state from ``last.pt``."""
    try:
        loaded = load_checkpoint(last, expected_arch=cfg.arch)
    except CheckpointError as exc:
        raise TrainError(f"cannot resume {cfg.name!r}: {exc}") from exc
    if loaded.meta["manifest_sha256"] != manifest.sha256:
        raise TrainError(f"cannot resume {cfg.name!r}: {last} was trained on another split manifest "
                         f"({loaded.meta['manifest_sha256']} vs {manifest.sha256}); start without --resume")
    model.load_state_dict(loaded.model.state_dict())
    if loaded.optimizer is not None:
        opt.load_state_dict(loaded.optimizer)
    extra = loaded.meta.get("extra") or {}
    return State(epoch=int(loaded.meta["epoch"]), step=int(extra.get("step", 0)),
                 best_val_acc=float(extra.get("best_val_acc", -1.0)),
                 best_val_loss=float(extra.get("best_val_loss", math.inf)),
                 best_epoch=int(extra.get("best_epoch", 0)), stopped_early=bool(extra.get("stopped_early", False)),
                 history=list(loaded.meta.get("history") or []))


def _end_epoch(cfg: RunConfig, model: nn.Module, opt: torch.optim.Optimizer, spec: ModelSpec, val: SplitTensors,
               device: torch.device, state: State, train_stats: tuple[float, float], seconds: float,
               manifest_sha: str, is_main: bool = True) -> None:
    """Advance the epoch and the early-stop rule (every rank); validate, record history, write best.pt (if
    improved) and last.pt (rank 0 only)."""
    state.epoch += 1
    if cfg.early_stop_train_acc is not None and train_stats[1] > cfg.early_stop_train_acc:
        state.stopped_early = True
    if not is_main:
        return
    val_loss, val_acc = _bce_and_acc(predict_logits(model, val, spec, device), val.y)
    row = {"epoch": state.epoch, "train_loss": train_stats[0], "train_acc": train_stats[1], "val_loss": val_loss,
           "val_acc": val_acc, "lr": opt.param_groups[0]["lr"], "seconds": seconds}
    state.history.append(row)
    improved = val_acc > state.best_val_acc or (val_acc == state.best_val_acc and val_loss < state.best_val_loss)
    if improved:
        state.best_val_acc, state.best_val_loss, state.best_epoch = val_acc, val_loss, state.epoch
        save_checkpoint(cfg.run_dir / "best.pt", model, spec, manifest_sha256=manifest_sha, history=state.history,
                        epoch=state.epoch, run=cfg.to_dict())
    save_checkpoint(cfg.run_dir / "last.pt", model, spec, manifest_sha256=manifest_sha, history=state.history,
                    epoch=state.epoch, run=cfg.to_dict(), optimizer=opt, extra=state.to_extra())
    print(f"[{cfg.name}] epoch {state.epoch}/{cfg.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
          f" | val loss {val_loss:.4f} acc {val_acc:.4f}{' *best*' if improved else ''} | {seconds:.1f} s"
          f"{' | early stop: train acc > %.2f' % cfg.early_stop_train_acc if state.stopped_early else ''}",
          flush=True)


def _prepare(cfg: RunConfig, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer, ModelSpec]:
    seed_everything(cfg.seed)
    model = build_model(cfg.arch, cfg.weights).to(device, memory_format=torch.channels_last)
    try:
        trainable = freeze_prefix(model, cfg.freeze_blocks)
    except ModelError as exc:
        raise TrainError(f"run {cfg.name!r}: {exc}") from exc
    opt = torch.optim.Adam(trainable, lr=cfg.lr)
    arch = get_architecture(cfg.arch)  # the normalisation its ImageNet weights expect
    spec = ModelSpec(cfg.arch, input_size=cfg.input_size, color_constancy=cfg.color_constancy, mean=arch.mean,
                     std=arch.std)
    return model, opt, spec


def _start_state(cfg: RunConfig, model: nn.Module, opt: torch.optim.Optimizer, manifest: Manifest,
                 is_main: bool) -> State:
    """A fresh State, or the one of ``last.pt`` with ``--resume`` (model and optimizer restored too)."""
    last = cfg.run_dir / "last.pt"
    if cfg.resume and last.is_file():
        state = _resume(cfg, last, model, opt, manifest)
        if is_main:
            print(f"[{cfg.name}] resuming after epoch {state.epoch} from {last}", flush=True)
        return state
    if cfg.resume and is_main:
        print(f"[{cfg.name}] --resume: no {last}, starting from scratch", flush=True)
    return State()


def _check_val_melanomas(cfg: RunConfig, y_val, manifest_path) -> None:
    """Refuse, before training, a ``sensitivity_confidence`` the val split has too few melanomas to show."""
    if cfg.sensitivity_confidence is None:
        return
    from moleport.metrics import melanomas_needed

    have, need = int(y_val.sum()), melanomas_needed(cfg.target_sensitivity, cfg.sensitivity_confidence)
    if have < need:
        where = manifest_path if isinstance(manifest_path, (str, Path)) else "the manifest"
        raise TrainError(f"run {cfg.name!r}: the val split of {where} has {have} melanoma image(s); a threshold whose "
                         f"one-sided {cfg.sensitivity_confidence:g} lower bound on sensitivity reaches "
                         f"{cfg.target_sensitivity:g} needs at least {need} (drop --sensitivity-confidence or lower "
                         f"it or --target-sensitivity)")


def train_run(cfg: RunConfig, manifest_path: Manifest | str | Path, ctx=None) -> Path:
    """Train ``cfg`` on the manifest's train split; returns the run folder (``checkpoint.pt``, ``metrics.json``).

    ``ctx`` (a :class:`moleport.train.distributed.DistContext`): data-parallel over its ranks, rank 0 writing.
    """
    from moleport.train.distributed import SOLO, wrap_model
    from moleport.train.report import finish_run

    ctx = ctx or SOLO
    if ctx.data_parallel and cfg.batch_size < 2 * ctx.world:
        raise TrainError(f"run {cfg.name!r}: batch {cfg.batch_size} leaves fewer than 2 images per rank "
                         f"on {ctx.world} ranks")
    device = resolve_device(ctx.device(cfg.device))
    manifest = _as_manifest(manifest_path)
    ctx.barrier()  # rank 0 has finished writing whatever an earlier run left (resume reads it)
    if ctx.is_main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
    model, opt, spec = _prepare(cfg, device)
    state = _start_state(cfg, model, opt, manifest, ctx.is_main)
    data = {s: load_tensors(manifest, s, cfg.input_size, device, cfg.limit) for s in ("train", "val", "test")}
    _check_val_melanomas(cfg, data["val"].labels, manifest_path)
    total_steps = cfg.epochs * len(epoch_batches(len(data["train"]), cfg.batch_size, cfg.seed, 0, ctx.world))
    model, trained = wrap_model(model, device, ctx)
    step_fn = make_step_fn(trained, opt, device, cfg.compile, cfg.precision, ctx.world)
    t_run, cpu_run = time.perf_counter(), time.process_time()
    while state.epoch < cfg.epochs and not state.stopped_early:
        t0 = time.perf_counter()
        stats = train_one_epoch(model, step_fn, opt, data["train"], spec, cfg, device, state, total_steps, ctx)
        _end_epoch(cfg, model, opt, spec, data["val"], device, state, stats, time.perf_counter() - t0,
                   manifest.sha256, ctx.is_main)
    timing = {"train_seconds": time.perf_counter() - t_run, "train_cpu_seconds": time.process_time() - cpu_run}
    if ctx.data_parallel:
        timing["world_size"] = ctx.world
    if ctx.is_main:
        best = load_checkpoint(cfg.run_dir / "best.pt", map_location=device, expected_arch=cfg.arch)
        model.load_state_dict(best.model.state_dict())
        finish_run(cfg, model, spec, data, device, state, manifest.sha256, timing)
    ctx.barrier()
    return cfg.run_dir
