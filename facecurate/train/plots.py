"""The run's pictures: ``confusion.png`` (18 x 18 with per-class scores, and one per head) and ``curves.png``
(training loss, validation NLL, validation macro F1 and the learning rate per epoch, each in its own panel)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..curate.labels import DEFAULT_AGE_BINS, HEADS, class_names, head_names  # noqa: E402


def _matrix(ax, cm: np.ndarray, names: list[str], title: str, fs: float) -> None:
    """Counts shaded by their row's share, class ids and names on both axes, row totals (n=0 rows in red)."""
    rows = cm.sum(1)
    frac = np.divide(cm, rows[:, None], out=np.zeros(cm.shape, dtype=float), where=rows[:, None] > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fs,
                        color="white" if frac[i, j] > 0.6 else "black")
    k = len(names)
    ax.set_xticks(range(k), [f"{i} {n}" for i, n in enumerate(names)] if k > 6 else names, fontsize=fs,
                  rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), [f"{i}  {n}  (n={rows[i]})" for i, n in enumerate(names)], fontsize=fs)
    for i, t in enumerate(ax.get_yticklabels()):
        if rows[i] == 0:
            t.set_color("#b3261e")
    ax.set_xlabel("predicted", fontsize=fs + 1)
    ax.set_ylabel("true", fontsize=fs + 1)
    ax.set_title(title, fontsize=fs + 3)


def _scores(ax, table: pd.DataFrame, fs: float) -> None:
    """Per-class precision / recall / F1 / support as a text table, rows aligned with the matrix beside it."""
    ax.set_xlim(0, 4)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.axis("off")
    for j, col in enumerate(("precision", "recall", "f1", "support")):
        ax.text(j + 0.5, -0.9, col if col != "f1" else "F1", ha="center", va="bottom", fontsize=fs, weight="bold")
        for i, v in enumerate(table[col]):
            absent = table["support"].iloc[i] == 0
            text = str(int(v)) if col == "support" else ("-" if absent else f"{v:.2f}")
            ax.text(j + 0.5, i, text, ha="center", va="center", fontsize=fs, color="#b3261e" if absent else "black")


def plot_confusion(path: str | Path, matrices: dict[str, np.ndarray], f1: dict[str, float], age_bins=DEFAULT_AGE_BINS,
                   per_class: pd.DataFrame | None = None) -> Path:
    """Write the 18-class confusion matrix (counts, shaded by row share) with per-class scores, beside one per head."""
    names = {"class": class_names(age_bins), **{h: list(head_names(h, age_bins)) for h in HEADS}}
    fig = plt.figure(figsize=(22, 12.5), layout="constrained")
    grid = fig.add_gridspec(3, 3, width_ratios=[2.7, 0.9, 1.15])
    _matrix(fig.add_subplot(grid[:, 0]), matrices["class"], names["class"],
            f"18 classes (macro F1 {f1.get('class', float('nan')):.3f})", fs=10)
    if per_class is not None:
        cls = per_class[per_class["output"] == "class"].reset_index(drop=True)
        _scores(fig.add_subplot(grid[:, 1]), cls, fs=10)
    for r, head in enumerate(HEADS):
        if head in matrices:
            _matrix(fig.add_subplot(grid[r, 2]), matrices[head], names[head],
                    f"{head} (macro F1 {f1.get(head, float('nan')):.3f})", fs=11)
    fig.suptitle("out-of-fold confusion (rows: true, columns: predicted; colour = share of the row; red: no photos)",
                 fontsize=14)
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_curves(path: str | Path, metrics: pd.DataFrame) -> Path:
    """Write training loss, validation 18-class NLL, validation macro F1 (18 classes per fold, heads as fold means)
    and the learning rate per epoch, each in its own panel, one line per fold."""
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (fold, m) in enumerate(metrics.groupby("fold")):
        c = colours[k % len(colours)]
        axes[0].plot(m["epoch"], m["train_loss"], color=c, label=f"fold {fold}")
        if m["val_loss"].notna().any():
            axes[1].plot(m["epoch"], m["val_loss"], color=c, label=f"fold {fold}")
        axes[2].plot(m["epoch"], m["val_f1"], lw=2, color=c, label=f"fold {fold}: 18 classes")
        if m["val_f1"].notna().any():  # the epoch whose weights were kept (best 18-class F1)
            best = m.loc[m["val_f1"].idxmax()]
            axes[2].plot([best["epoch"]], [best["val_f1"]], marker="*", ms=13, color=c, ls="none")
        axes[3].plot(m["epoch"], m["lr"], color=c, label=f"fold {fold}")
    mean = metrics.groupby("epoch").mean(numeric_only=True)
    for head, style in zip(HEADS, (":", "-.", "--")):
        col = f"val_f1_{head}"
        if col in mean and mean[col].notna().any():
            axes[2].plot(mean.index, mean[col], style, color="gray", lw=1.5, label=f"{head} (mean of folds)")
    titles = ("training loss (all heads, as optimised)", "validation NLL (18 classes)", "validation macro F1",
              "learning rate (end of epoch)")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)  # below: lines stay visible
    f1 = metrics[["val_f1", *[f"val_f1_{h}" for h in HEADS if f"val_f1_{h}" in metrics]]].to_numpy(float)
    top = np.nanmax(f1) if np.isfinite(f1).any() else 1.0
    axes[2].set_ylim(0, min(1.02, max(0.1, top * 1.15)))  # scaled to the scores, so low 18-class F1 is readable
    axes[2].set_title("validation macro F1 (star: the epoch kept)")
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
