"""`facecurate runs` files: runs.csv (the table) and runs.html (the table, sortable by a click on a column, above the
runs' validation curves overlaid in one picture); self-contained, nothing fetched from the network."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..curate.outputs import claimed_output  # noqa: E402
from .runs import SCORES, RunsTable  # noqa: E402

CURVES = [("val_f1", "validation macro F1 (18 classes)"), ("val_loss", "validation loss (NLL)"),
          ("train_loss", "training loss")]


def curves_png(rt: RunsTable, width: float = 13.0) -> bytes:
    """One panel per metric, one line per run (mean over its folds per epoch), its best epoch marked with a dot."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(width, 3.8), dpi=110)
    for ax, (col, title) in zip(axes, CURVES):
        for run in rt.table["run"]:
            m = rt.curves.get(run, pd.DataFrame())
            if col not in m or m.empty:
                continue
            per_epoch = m.groupby("epoch")[col].mean()
            (line,) = ax.plot(per_epoch.index, per_epoch.to_numpy(), marker=".", lw=1.4, label=run)
            if col == "val_f1" and per_epoch.notna().any():
                best = per_epoch.idxmax()
                ax.plot([best], [per_epoch[best]], "o", ms=8, mfc="none", color=line.get_color())
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # the legend below the panels: it never covers a line
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * ((len(labels) - 1) // 4), 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


_SORT_JS = """
document.querySelectorAll('th').forEach((th, i) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const down = th.dataset.dir !== 'desc'; th.dataset.dir = down ? 'desc' : 'asc';
  const key = r => { const t = r.cells[i].dataset.v ?? r.cells[i].textContent; const n = parseFloat(t);
                     return isNaN(n) ? t : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1); });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _cell(col: str, value) -> str:
    if col in SCORES or col == "train_s":
        v = float(value)
        text = "n/a" if v != v else (f"{v:.3f}" if col in SCORES else f"{v:.1f}")
        return f'<td class="num" data-v="{"" if v != v else v}">{text}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def runs_html(rt: RunsTable) -> str:
    """The page: what differs, the sortable table, the overlaid curves."""
    cols = [c for c in rt.table.columns if c != "path"]
    head = "".join(f'<th title="click to sort">{html.escape(c)}</th>' for c in cols)
    body = "".join("<tr>" + "".join(_cell(c, row[c]) for c in cols) + "</tr>" for _, row in rt.table.iterrows())
    png = base64.b64encode(curves_png(rt)).decode()
    differ = ", ".join(rt.settings) if rt.settings else "none (the runs were asked for the same settings)"
    skipped = f"<p>Unfinished runs left out: {html.escape(', '.join(rt.skipped))}.</p>" if rt.skipped else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>runs: {html.escape(rt.root.resolve().name)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;max-width:1400px}}table{{border-collapse:collapse}}
th,td{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}th{{cursor:pointer;background:#f4f4f4}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}img{{max-width:100%}}</style></head><body>
<h1>Runs in {html.escape(str(rt.root))}</h1>
<p>{len(rt.table)} run(s). Settings that differ: {html.escape(differ)}. Scores are out-of-fold macro F1 (flip TTA)
over every fold a run trained; best_epoch per fold; train_s is the sum of the epochs' seconds. Click a column to sort.</p>
{skipped}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Curves</h2><p>Mean over each run's folds per epoch; a ring marks the best validation F1.</p>
<img alt="validation curves of every run" src="data:image/png;base64,{png}">
<script>{_SORT_JS}</script></body></html>
"""


def write_runs(rt: RunsTable, out: str | Path, csv: bool = True, page: bool = True) -> dict[str, Path]:
    """runs.csv and/or runs.html into the claimed folder ``out`` (never inside a run folder); returns what was written."""
    paths: dict[str, Path] = {}
    with claimed_output(out, "runs", list(rt.table["path"]), recognise=lambda p: (p / "runs.csv").is_file()
                        or (p / "runs.html").is_file()) as folder:
        if csv:
            paths["csv"] = folder / "runs.csv"
            rt.table.to_csv(paths["csv"], index=False)
        if page:
            paths["html"] = folder / "runs.html"
            paths["html"].write_text(runs_html(rt))
    return paths
