"""torch.distributed for training: one run data-parallel (DDP) or the Table 2 grid spread over ranks.

Launch with ``torchrun --nproc_per_node N -m moleport.cli train ...`` (or ``moleport train --distributed N``,
which execs exactly that). Backend nccl on CUDA, gloo on CPU (and gloo for the grid, whose ranks only exchange
result rows and may share one GPU).

Data-parallel semantics: every rank draws the same shuffled GLOBAL batches of ``cfg.batch_size`` (see
:func:`moleport.train.data.epoch_batches`) and takes ``batch[rank::world]``, the DistributedSampler-equivalent
over the resident split. Each rank's loss is ``sum(bce) * world / global_batch``, so DDP's gradient average is
exactly the gradient of the mean loss of the global batch: the paper's batch size and learning rate mean the same
thing at any world size. Rank 0 alone validates and writes ``last.pt``/``best.pt``/``checkpoint.pt``/metrics.

BatchNorm: SyncBatchNorm on CUDA (statistics of the global batch); on CPU (gloo) per-rank batch statistics, with
rank 0's running statistics broadcast to all ranks at every forward (DDP ``broadcast_buffers``) and saved.
Dropout masks are drawn per rank, so a model with dropout (AlexNet, VGG) matches a single-process run in
distribution, not bit for bit; one with neither dropout nor BatchNorm matches to float tolerance.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

from moleport.procstate import torch_threads


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; the default is a single process (no process group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def data_parallel(self) -> bool:
        return self.world > 1

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's share of one global batch of indices."""
        return idx[self.rank::self.world] if self.world > 1 else idx

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=device if self.backend == "nccl" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (on every rank)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def device(self, name: str) -> str:
        """The device this rank trains on: ``auto``/``cuda`` become ``cuda:local_rank`` (modulo the GPUs)."""
        if self.world == 1 or not torch.cuda.is_available() or name not in ("auto", "cuda"):
            return name
        return f"cuda:{self.local_rank % torch.cuda.device_count()}"


SOLO = DistContext()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ


def default_backend(device: str) -> str:
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
    return "nccl" if cuda else "gloo"


@contextmanager
def process_group(backend: str, timeout_s: float = 3600.0) -> Iterator[DistContext]:
    """Join the torchrun job (env:// rendezvous); CPU threads split between the local ranks; everything restored.

    Re-entrant: inside an already initialised group it yields that group's context and leaves it be.
    """
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_initialized():
        yield DistContext(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank,
                          backend=dist.get_backend())
        return
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    cuda_dev = torch.cuda.current_device() if torch.cuda.is_available() else None
    with contextlib.ExitStack() as stack:  # threads and the CUDA device come back also when joining fails
        stack.enter_context(torch_threads(max(1, (os.cpu_count() or 1) // local_world)))
        if cuda_dev is not None:
            stack.callback(torch.cuda.set_device, cuda_dev)
        if backend == "nccl":
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
        stack.callback(dist.destroy_process_group)
        yield DistContext(rank=rank, world=world, local_rank=local_rank, backend=backend)


def wrap_model(model: nn.Module, device: torch.device, ctx: DistContext) -> tuple[nn.Module, nn.Module]:
    """(module to save/evaluate, module to train). DDP (with SyncBatchNorm on CUDA) when data-parallel."""
    if not ctx.data_parallel:
        return model, model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # reuses the same Parameters (optimizer intact)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)  # buffers synced from rank 0
    return model, ddp


def torchrun_argv(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs ``moleport <argv>`` on ``nproc`` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "moleport.cli", *argv]


def strip_distributed_flag(argv: list[str]) -> list[str]:
    """``argv`` without ``--distributed N`` / ``--distributed=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--distributed":
            skip = True
        elif not a.startswith("--distributed="):
            out.append(a)
    return out


def exec_torchrun(nproc: int, argv: list[str]) -> int:
    """Re-run ``moleport <argv>`` under torchrun and return its exit status."""
    import subprocess

    if shutil.which(sys.executable) is None:
        raise RuntimeError(f"cannot find the Python interpreter {sys.executable}")
    cmd = torchrun_argv(nproc, strip_distributed_flag(argv))
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)
