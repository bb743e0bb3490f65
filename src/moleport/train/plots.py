"""Figures of a run: confusion matrices (paper Table 3 layout), ROC (Figure 4 style), training curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from moleport import metrics as M


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(path: Path, result: dict, title: str) -> Path:
    """Val and test confusion matrices at the chosen threshold; rows true [mel, nev], cols predicted."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, split in zip(axes, ("val", "test")):
        ev = result[split]["at_threshold"]
        cm = np.array(ev["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["melanoma", "nevus"])
        ax.set_yticks([0, 1], ["melanoma", "nevus"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{split} @ {ev['threshold']:.3f}: acc {ev['clinical']['accuracy']:.3f}")
    fig.suptitle(f"{title}: confusion matrices (threshold chosen on val)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(path: Path, ys: dict, probs: dict, threshold: float, title: str) -> Path:
    """ROC curves (melanoma positive) of val and test with AUC and the chosen operating point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for split, style in (("val", "--"), ("test", "-")):
        r = M.roc(ys[split], probs[split])
        if not r["fpr"]:
            continue
        ax.plot(r["fpr"], r["tpr"], style, label=f"{split} (AUC = {r['auc']:.3f})")
        m = M.binary_metrics(M.confusion(ys[split], probs[split] >= threshold), "melanoma")
        ax.plot(1 - m["specificity"], m["recall"], "o", color=ax.lines[-1].get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (melanoma sensitivity)")
    ax.set_title(f"{title}: ROC (dot = threshold {threshold:.3f})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(path: Path, history: list[dict], best_epoch: int, title: str) -> Path:
    """Loss and accuracy per epoch, train and validation; the kept (best-val) epoch marked."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key in zip(axes, ("loss", "acc")):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(ep, [h[f"val_{key}"] for h in history], "s-", label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls=":", label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "BCE loss")
        ax.legend()
    fig.suptitle(f"{title}: training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
