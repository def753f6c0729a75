"""The run's pictures: ``confusion.png`` (18 x 18 and one per head) and ``curves.png`` (loss, F1, lr per epoch)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..curate.labels import DEFAULT_AGE_BINS, HEADS, class_names, head_names  # noqa: E402


def _matrix(ax, cm: np.ndarray, names: list[str], title: str, small: bool = False) -> None:
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fs = 6 if small else 9
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fs,
                        color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=90 if small else 30, fontsize=fs, ha="center" if small else "right")
    ax.set_yticks(range(len(names)), names, fontsize=fs)
    ax.set_xlabel("predicted", fontsize=fs + 1)
    ax.set_ylabel("true", fontsize=fs + 1)
    ax.set_title(title, fontsize=fs + 2)


def plot_confusion(path: str | Path, matrices: dict[str, np.ndarray], f1: dict[str, float], age_bins=DEFAULT_AGE_BINS) -> Path:
    """Write the 18-class confusion matrix (counts, shaded by row share) beside one per head."""
    names = {"class": class_names(age_bins), **{h: list(head_names(h, age_bins)) for h in HEADS}}
    fig = plt.figure(figsize=(20, 11))
    grid = fig.add_gridspec(3, 2, width_ratios=[2.6, 1], hspace=0.45, wspace=0.15)
    _matrix(fig.add_subplot(grid[:, 0]), matrices["class"], names["class"],
            f"18 classes (macro F1 {f1.get('class', float('nan')):.3f})", small=True)
    for r, head in enumerate(HEADS):
        if head in matrices:
            _matrix(fig.add_subplot(grid[r, 1]), matrices[head], names[head], f"{head} (macro F1 {f1.get(head, float('nan')):.3f})")
    fig.suptitle("out-of-fold confusion (rows: true, columns: predicted; colour = share of the row)")
    path = Path(path)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(path: str | Path, metrics: pd.DataFrame) -> Path:
    """Write train/val loss, validation macro F1 (18 classes and per head) and the learning rate per epoch, one line per fold."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for fold, m in metrics.groupby("fold"):
        line = axes[0].plot(m["epoch"], m["train_loss"], label=f"fold {fold} train")[0]
        if m["val_loss"].notna().any():
            axes[0].plot(m["epoch"], m["val_loss"], "--", color=line.get_color(), label=f"fold {fold} val (18-class NLL)")
        axes[1].plot(m["epoch"], m["val_f1"], lw=2, color=line.get_color(), label=f"fold {fold} 18 classes")
        axes[2].plot(m["epoch"], m["lr"], color=line.get_color(), label=f"fold {fold}")
    mean = metrics.groupby("epoch").mean(numeric_only=True)
    for head, style in zip(HEADS, (":", "-.", "--")):
        col = f"val_f1_{head}"
        if col in mean and mean[col].notna().any():
            axes[1].plot(mean.index, mean[col], style, color="gray", lw=1.5, label=f"{head} (mean of folds)")
    axes[0].set_title("loss")
    axes[1].set_title("validation macro F1")
    axes[1].set_ylim(0, 1.02)
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
