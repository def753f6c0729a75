"""What ``explain`` draws: one PNG grid per head (a row per class, right predictions on the left and wrong ones on
the right, each crop under its Grad-CAM map) and ``index.html``, a page holding the grids and a table of every
photo shown. The overlay is pytorch-grad-cam's ``show_cam_on_image`` (a jet colour map over the crop: red is
where the model looked most for the class it predicted).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from ...curate.labels import head_names

CELL_W = 1.3  # inches per photo; the height follows the crop's aspect
SIDES = {True: ("right", "wrong"), False: ("confident", "unsure")}
SIDE_TITLES = {"right": "right: the most confident", "wrong": "wrong: the most confidently wrong",
               "confident": "the most confident", "unsure": "the least confident"}


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3: the crop with its map (resized to the crop) laid over it."""
    import cv2
    from pytorch_grad_cam.utils.image import show_cam_on_image

    h, w = image.shape[:2]
    cam = cv2.resize(np.asarray(cam, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return show_cam_on_image(image.astype(np.float32) / 255.0, np.clip(cam, 0, 1), use_rgb=True, image_weight=0.55)


def _row_counts(frame: pd.DataFrame, head: str, k: int, labelled: bool) -> str:
    if labelled:
        mine = frame[frame[f"true_{head}"] == k]
        right = int((mine[f"pred_{head}"] == k).sum())
        return f"{len(mine)} photos\n{right} right, {len(mine) - right} wrong"
    return f"{int((frame[f'pred_{head}'] == k).sum())} predicted"


def write_grid(path: Path, head: str, picks: pd.DataFrame, maps: np.ndarray, images, frame: pd.DataFrame,
               per_cell: int, labelled: bool, age_bins, subtitle: str) -> Path:
    """``<head>.png``: a row per class of the head, ``per_cell`` photos of each side, each under its map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = head_names(head, age_bins)
    h, w = images.shape[1:3]
    cell_h = CELL_W * h / w + 0.35
    ncols = 2 * per_cell + 1
    widths = [CELL_W] * per_cell + [0.25] + [CELL_W] * per_cell
    fig = plt.figure(figsize=(sum(widths) + 1.6, cell_h * len(names) + 1.1))  # 0.85 in above the rows: titles
    grid = fig.add_gridspec(len(names), ncols, width_ratios=widths, left=1.5 / (sum(widths) + 1.6), right=0.99,
                            top=1 - 0.85 / (cell_h * len(names) + 1.1), bottom=0.02, wspace=0.06, hspace=0.3)
    left, right = SIDES[labelled]
    for k, name in enumerate(names):
        for side, first in ((left, 0), (right, per_cell + 1)):
            sel = picks[(picks["cls"] == k) & (picks["side"] == side)].sort_values("rank")
            for j in range(per_cell):
                ax = fig.add_subplot(grid[k, first + j])
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(sel):
                    pick = sel.iloc[j]
                    ax.imshow(overlay(np.asarray(images[int(pick["cache_row"])]), maps[picks.index.get_loc(pick.name)]))
                    said = "" if side in ("right", "confident", "unsure") else f"said {names[int(pick['pred'])]} "
                    ax.set_title(f"{said}{pick['p']:.2f}", fontsize=8, color="#b00020" if side == "wrong" else "black")
                else:
                    ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=8, color="#888888", transform=ax.transAxes)
                    for s in ax.spines.values():
                        s.set_color("#dddddd")
                if j == 0 and side == left:
                    ax.set_ylabel(f"{name}\n{_row_counts(frame, head, k, labelled)}", fontsize=9, rotation=0,
                                  ha="right", va="center", labelpad=8)
    top = 1 - 0.66 / (cell_h * len(names) + 1.1)
    fig.text(0.5, 1 - 0.12 / (cell_h * len(names) + 1.1), f"{head} head: where the model looked for the class it predicted",
             ha="center", va="top", fontsize=10.5 if per_cell > 2 else 9, weight="bold")
    fig.text(0.5, 1 - 0.34 / (cell_h * len(names) + 1.1), "Grad-CAM: red = where it looked most", ha="center", va="top",
             fontsize=8.5, color="#444444")
    x0 = 1.5 / (sum(widths) + 1.6)
    span = 0.99 - x0
    fig.text(x0 + span * (per_cell * CELL_W / 2) / sum(widths), top, SIDE_TITLES[left], ha="center", fontsize=9.5)
    fig.text(x0 + span * (sum(widths) - per_cell * CELL_W / 2) / sum(widths), top, SIDE_TITLES[right], ha="center",
             fontsize=9.5, color="#b00020" if right == "wrong" else "black")
    fig.text(0.995, 0.003, subtitle, ha="right", va="bottom", fontsize=7, color="#666666")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>explain {name}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}}img{{max-width:100%;
border:1px solid #ddd}}table{{border-collapse:collapse;font-size:13px;margin:8px 0 28px}}td,th{{border:1px solid #ddd;
padding:3px 8px;text-align:left}}th{{background:#f4f4f4}}.wrong{{color:#b00020}}p{{line-height:1.45}}</style></head>
<body><h1>Where the model looks: {name}</h1>
<p>{intro}</p>
<p>Each picture is one head. A row is one {rowkind}; {sides} The coloured map is Grad-CAM at layer <code>{layer}</code>
for the class the model <em>predicted</em>: red is where the evidence for that class came from. A model that reads
the face lights the face; one that lights the background, the hair or the shirt has learned a shortcut from the
data (the seeds' "bias and cheating") and will fail on photos where that shortcut is absent.</p>
{sections}
<p style="color:#666;font-size:12px">Run: <code>{run}</code>. Cache: <code>{cache}</code>. Every photo shown is listed in
<code>explained.csv</code>.</p></body></html>
"""


def write_page(path: Path, run: Path, cache: Path, grids: dict[str, Path], picks: pd.DataFrame, frame: pd.DataFrame,
               labelled: bool, mode: str, layer: str, age_bins) -> Path:
    """``index.html``: the grids, how to read them, and a table of the photos each one shows."""
    if mode == "out-of-fold":
        intro = ("Photos of the run's own cache, each explained by the fold model that did not train on it, with its "
                 "out-of-fold prediction and the labels the run trained on.")
    else:
        intro = ("Photos of another cache or data set, predicted by the run's fold ensemble; each map is the mean of "
                 "every fold's map." + ("" if labelled else " The photos have no labels, so rows are the predicted "
                                        "class and the sides are the most and the least confident predictions."))
    sides = ("the left half shows right predictions (most confident first), the right half wrong ones (most "
             "confidently wrong first, with what the model said)." if labelled else
             "the left half shows the most confident predictions, the right half the least confident.")
    sections = []
    for head, png in grids.items():
        names = head_names(head, age_bins)
        sel = picks[picks["head"] == head]
        rows = "".join(
            f"<tr class=\"{'wrong' if r.side == 'wrong' else ''}\"><td>{html.escape(names[r.cls])}</td><td>{r.side}</td>"
            f"<td>{html.escape(str(r.image_id))}</td><td>{html.escape(str(r.person))}</td>"
            f"<td>{html.escape(names[r.true]) if r.true >= 0 else '-'}</td><td>{html.escape(names[r.pred])}</td>"
            f"<td>{r.p:.3f}</td></tr>" for r in sel.itertuples())
        sections.append(f"<h2>{head}</h2><img src=\"{png.name}\" alt=\"Grad-CAM grid of the {head} head\">"
                        f"<table><tr><th>row</th><th>side</th><th>photo</th><th>person</th><th>true</th>"
                        f"<th>predicted</th><th>p</th></tr>{rows}</table>")
    path.write_text(PAGE.format(run=html.escape(str(run)), name=html.escape(Path(run).name), intro=intro, rowkind="true class" if labelled else
                                "predicted class", sides=sides, layer=html.escape(layer), sections="\n".join(sections),
                                cache=html.escape(str(cache))))
    return path
