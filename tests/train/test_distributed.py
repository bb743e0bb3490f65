"""torchrun with gloo on 2 CPU processes: a data-parallel run equals a single-process run of the same global
batch (loss curve and final weights), resume works, a 2-rank grid gives the 1-rank table; CPU bf16 autocast.

The job is launched once per module (``python -m torch.distributed.run`` running THIS file as the worker).
It trains ``tinynet``: a 2-conv network without BatchNorm or dropout (registered by the test), the kind of
model for which data-parallel training is exact to float tolerance (see moleport.train.distributed).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

import moleport  # noqa: F401  (torch._dynamo import order)
from moleport.data.manifest import Item, Manifest, load_manifest
from moleport.models import ARCHITECTURES, Architecture


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 1000)

    def forward(self, x):
        return self.fc(self.features(x))


TINY = Architecture("tinynet", TinyNet, "fc")


def _configs(out: Path):
    from moleport.train.config import RunConfig

    base = dict(arch="tinynet", epochs=2, batch_size=4, lr=1e-2, input_size=32, early_stop_train_acc=None,
                device="cpu")
    dp = RunConfig(name="dp", out_dir=out / "dp", **base)
    grid = [RunConfig(name=f"g{i}", out_dir=out / f"g{i}", paper=True, paper_accuracy=0.5,
                      **{**base, "seed": i, "batch_size": 4 + 2 * i}) for i in range(3)]
    return dp, grid


def _worker(manifest_path: str, out: str) -> None:
    """Rank body under torchrun: data-parallel run, interrupted + resumed run, grid, and the CLI."""
    from moleport.cli import main as cli_main
    from moleport.train.distributed import process_group
    from moleport.train.grid import run_grid
    from moleport.train.loop import train_run

    ARCHITECTURES["tinynet"] = TINY
    out_p, manifest = Path(out), load_manifest(manifest_path)
    dp, grid = _configs(out_p)
    with process_group("gloo") as ctx:
        train_run(dp, manifest, ctx)
        train_run(dp.replace(name="res", out_dir=out_p / "res", epochs=1), manifest, ctx)
        train_run(dp.replace(name="res", out_dir=out_p / "res", resume=True), manifest, ctx)
        run_grid(grid, manifest, out_p / "grid2", ctx)
        # the CLI's own process_group() re-enters this one (a group is initialised once per process)
        rc = cli_main(["train", "--run", "quick", "--data", manifest_path, "--out", str(out_p / "cli"),
                       "--epochs", "1", "--limit", "8", "--device", "cpu"])
    assert rc == 0, rc


def _manifest(root: Path) -> Manifest:
    """24 random 32x32 PNGs, 12/6/6 train/val/test, half melanoma (a dark centre)."""
    from PIL import Image

    rng, items = np.random.default_rng(0), []
    for i in range(24):
        img = rng.integers(120, 230, size=(32, 32, 3), dtype=np.uint8)
        if i % 2:
            img[8:24, 8:24] //= 3
        path = root / "imgs" / f"img{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        items.append(Item(file=str(path), sha256=hashlib.sha256(img.tobytes()).hexdigest(),
                          label="melanoma" if i % 2 else "nevus", split="train" if i < 12 else "val" if i < 18 else "test",
                          lesion_id=f"L{i}", source="test"))
    return Manifest(items=tuple(items), seed=0, source={"kind": "unit-test"})


if __name__ != "__main__":
    import pytest

    @contextmanager
    def _one_thread():
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # as each of the 2 ranks on this 2-core machine
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @pytest.fixture(scope="module")
    def job(tmp_path_factory):
        root = tmp_path_factory.mktemp("ddp")
        manifest_path = _manifest(root).save(root / "manifest.json")
        env = {**os.environ, "MOLEPORT_ARTIFACTS": str(root / "artifacts"), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
               str(manifest_path), str(root / "out")]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=root)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return {"root": root, "manifest": load_manifest(manifest_path), "out": root / "out", "stdout": proc.stdout}

    @pytest.fixture
    def tiny_arch(monkeypatch):
        monkeypatch.setitem(ARCHITECTURES, "tinynet", TINY)

    def _weights(path: Path) -> dict:
        from moleport.models.checkpoint import load_checkpoint

        return load_checkpoint(path).model.state_dict()

    def test_data_parallel_run_matches_single_process_with_the_same_global_batch(job, tiny_arch, tmp_path):
        from moleport.models.checkpoint import read_checkpoint
        from moleport.train.loop import train_run

        dp, _ = _configs(tmp_path)
        with _one_thread():
            single = train_run(dp, job["manifest"])
        a, b = read_checkpoint(single / "last.pt"), read_checkpoint(job["out"] / "dp" / "last.pt")
        for key in ("train_loss", "train_acc"):
            np.testing.assert_allclose([h[key] for h in b["history"]], [h[key] for h in a["history"]], rtol=1e-5)
        for k, v in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-4, atol=1e-6, msg=k)
        # rank 0 alone validated and wrote: one line per epoch, one metrics.json with the world size
        assert job["stdout"].count("[dp] epoch 1/2") == 1
        assert json.loads((job["out"] / "dp" / "metrics.json").read_text())["world_size"] == 2

    def test_data_parallel_resume_equals_the_straight_run(job, tiny_arch):
        straight, resumed = job["out"] / "dp" / "last.pt", job["out"] / "res" / "last.pt"
        assert "[res] resuming after epoch 1" in job["stdout"]
        for k, v in _weights(straight).items():
            torch.testing.assert_close(_weights(resumed)[k], v, msg=k)

    def test_two_rank_grid_writes_the_table_of_a_one_rank_grid(job, tiny_arch, tmp_path):
        from moleport.train.grid import run_grid

        _, grid = _configs(tmp_path)
        with _one_thread():
            one = run_grid(grid, job["manifest"], tmp_path)
        two = json.loads((job["out"] / "grid2" / "paper_grid.json").read_text())
        assert two["world_size"] == 2 and [r["run"] for r in two["rows"]] == ["g0", "g1", "g2"]
        assert (job["out"] / "grid2" / "paper_grid.md").read_text() == (tmp_path / "paper_grid.md").read_text()
        assert two["winner"] == one["winner"]

    def test_cli_under_torchrun_trains_data_parallel(job):
        m = json.loads((job["out"] / "cli" / "quick" / "metrics.json").read_text())
        assert m["world_size"] == 2 and m["epochs_run"] == 1 and m["config"]["precision"] == "auto"
        assert (job["out"] / "cli" / "quick" / "checkpoint.pt").is_file()

    def test_distributed_flag_relaunches_under_torchrun():
        from moleport.train.distributed import strip_distributed_flag, torchrun_argv

        argv = strip_distributed_flag(["train", "--distributed", "2", "--run", "quick", "--distributed=3"])
        assert argv == ["train", "--run", "quick"]
        cmd = torchrun_argv(2, argv)
        assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
        assert cmd[6:] == ["moleport.cli", "train", "--run", "quick"]

    def test_bf16_autocast_trains_fp32_weights(tiny_arch, tmp_path, tiny_manifest):
        from moleport.models.checkpoint import read_checkpoint
        from moleport.train import loop

        if not loop.cpu_supports_bf16():
            pytest.skip("this CPU has no native bf16")
        dp, _ = _configs(tmp_path)
        run = loop.train_run(dp.replace(precision="bf16", epochs=1), tiny_manifest)
        ck = read_checkpoint(run / "checkpoint.pt")
        assert ck["run"]["precision"] == "bf16"
        assert all(v.dtype == torch.float32 for v in ck["state_dict"].values() if v.is_floating_point())

    def test_gpu_check_script_runs_in_tiny_mode_on_cpu(tmp_path):
        env = {**os.environ, "VPY": sys.executable, "MOLEPORT_ARTIFACTS": str(tmp_path / "artifacts")}
        script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"
        proc = subprocess.run(["bash", str(script), "--tiny", "--out", str(tmp_path / "gc")], env=env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        info = json.loads((tmp_path / "gc" / "gpu_check.json").read_text())
        assert info["tiny"] and [r["run"] for r in info["runs"]] == ["mobilenet-bs16", "mobilenet-bs8"]
        assert all(r["train_img_per_s"] > 0 for r in info["runs"]) and info["load"]["images"] > 0
        md = (tmp_path / "gc" / "gpu_check.md").read_text()
        assert "grid wall time" in md and "# Table 2" in md and "| fp32 |" in md

    def test_bf16_refused_on_a_cpu_without_it(monkeypatch):
        from moleport.train import loop

        monkeypatch.setattr(loop, "cpu_supports_bf16", lambda: False)
        with pytest.raises(loop.TrainError, match="bf16"):
            loop.autocast_dtype(torch.device("cpu"), "bf16")
        assert loop.autocast_dtype(torch.device("cpu"), "auto") is None
        assert loop.autocast_dtype(torch.device("cuda"), "auto") is torch.bfloat16


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])


def test_a_failed_join_puts_the_thread_count_back(monkeypatch):
    import torch

    from moleport.train import distributed as D

    def refuse(*args, **kwargs):
        raise RuntimeError("rendezvous refused")

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setattr(D.dist, "init_process_group", refuse)
    from moleport.procstate import torch_threads

    with torch_threads(max(3, (os.cpu_count() or 1) // 4 + 2)) as before:  # not the count a rank would get
        with pytest.raises(RuntimeError, match="rendezvous refused"):
            with D.process_group("gloo"):
                pass
        assert torch.get_num_threads() == before
