"""``--grid paper``: all seven Table 2 runs, and our numbers beside the paper's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moleport.data.manifest import Manifest
from moleport.models import ModelError
from moleport.train.config import RunConfig
from moleport.train.loop import TrainError, train_run
from moleport.train.report import write_json


def grid_row(cfg: RunConfig, metrics: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"run": cfg.name, "arch": cfg.arch, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                           "lr": cfg.lr, "weights": cfg.weights or "none", "paper_accuracy": cfg.paper_accuracy}
    if metrics is None:
        return {**row, "error": error}
    val, test = metrics["val"], metrics["test"]
    return {**row, "val_accuracy": val["at_0.5"]["clinical"]["accuracy"],
            "test_accuracy": test["at_0.5"]["clinical"]["accuracy"], "test_auc": test["auc"],
            "threshold": metrics["threshold"]["threshold"],
            "test_sensitivity_at_threshold": test["at_threshold"]["clinical"]["recall"],
            "test_specificity_at_threshold": test["at_threshold"]["clinical"]["specificity"],
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
            "stopped_early": metrics["stopped_early"], "run_dir": str(cfg.run_dir)}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def grid_markdown(rows: list[dict[str, Any]], winner: str | None) -> str:
    cols = ["run", "arch", "epochs", "batch_size", "lr", "weights", "paper_accuracy", "test_accuracy",
            "val_accuracy", "test_auc", "test_sensitivity_at_threshold", "test_specificity_at_threshold",
            "best_epoch", "epochs_run"]
    lines = ["# Table 2: the paper's accuracy beside ours", "",
             "Accuracy at threshold 0.5 (the same number in both conventions). Sensitivity/specificity: melanoma "
             "positive, at the threshold chosen on VALIDATION for 95 % melanoma sensitivity.",
             f"**Winner picked by VALIDATION accuracy (never by test): {winner or '-'}**", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        name = f"**{r['run']}**" if r["run"] == winner else r["run"]
        cells = [name] + [_fmt(r.get(c)) for c in cols[1:]]
        if "error" in r:
            cells[7] = f"FAILED: {r['error'][:120]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _train_row(cfg: RunConfig, manifest: Manifest | str | Path) -> dict[str, Any]:
    """One grid row; a failing run is recorded, not fatal."""
    try:
        run_dir = train_run(cfg, manifest)
        return grid_row(cfg, json.loads((run_dir / "metrics.json").read_text()))
    except (ModelError, TrainError, ValueError) as exc:
        print(f"[{cfg.name}] FAILED: {exc}", flush=True)
        return grid_row(cfg, None, f"{type(exc).__name__}: {exc}")


def run_grid(configs: list[RunConfig], manifest: Manifest | str | Path, out_dir: Path, ctx=None) -> dict[str, Any]:
    """Train every config; write paper_grid.json/.md in out_dir.

    With a :class:`~moleport.train.distributed.DistContext` of several ranks, rank r trains whole runs
    ``configs[r::world]`` (single-process each, on its own GPU when there are several) and rank 0 writes the one
    table, rows in the order of ``configs``; every rank returns the same result.
    """
    from moleport.train.distributed import SOLO

    ctx = ctx or SOLO
    mine = [(i, _train_row(cfg.replace(device=ctx.device(cfg.device)), manifest))
            for i, cfg in enumerate(configs) if i % ctx.world == ctx.rank]
    rows = [row for _, row in sorted((p for part in ctx.gather(mine) for p in part), key=lambda p: p[0])]
    done = [r for r in rows if "val_accuracy" in r]
    winner = max(done, key=lambda r: (r["val_accuracy"], -r["epochs"]))["run"] if done else None
    result = {"winner": winner, "winner_chosen_by": "validation accuracy at 0.5", "world_size": ctx.world, "rows": rows}
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "paper_grid.json", result)
        (out_dir / "paper_grid.md").write_text(grid_markdown(rows, winner), encoding="utf-8")
    ctx.barrier()
    return result
