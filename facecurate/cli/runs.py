"""`runs`: the runs in a folder side by side (settings that differ, out-of-fold F1, best epoch, time); --csv, --html."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .app import choices, command, config_option, flag, quiet_option, stage, verbose_option
from .summaries import print_paths

# train.runs.SORT_KEYS, repeated so `facecurate --help` does not import the trainer (torch)
SORT_KEYS = ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age", "run", "train_s", "best_epoch")

HEADERS = {"oof_f1": "F1 (18)", "oof_f1_mask": "F1 mask", "oof_f1_gender": "F1 gender", "oof_f1_age": "F1 age",
           "best_epoch": "best epoch", "train_s": "train s"}


@command()
def runs(
    root: Optional[Path] = typer.Argument(None, metavar="DIR", help="A folder of run folders written by `train` (or one run folder).", show_default="artifacts/runs"),
    sort: str = typer.Option("oof_f1", metavar=choices(*SORT_KEYS), help="Column the rows are sorted by (scores: best first; run, train_s, best_epoch: ascending)."),
    csv: bool = flag(False, help="Also write runs.csv (every column, the run folders' paths included) into --out."),
    html: bool = flag(False, help="Also write runs.html into --out: the table, sortable by a click on a column, and the runs' curves overlaid."),
    out: Optional[Path] = typer.Option(None, help="Folder for runs.csv and runs.html (with --csv / --html).", show_default="DIR/../runs-compare"),
    config: Optional[Path] = config_option("sort: run"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Compare runs side by side: the settings that differ, out-of-fold macro F1 per head and 18-class, best epoch, time."""
    from ..train.config import DEFAULT_RUNS_ROOT
    from ..train.runs import SCORES, compare_runs
    from ..train.runs_page import write_runs

    root = root or DEFAULT_RUNS_ROOT
    with stage(quiet=quiet, verbose=verbose) as (console, progress):
        rt = compare_runs(root, sort=sort)
        paths = write_runs(rt, out or Path(root).resolve().parent / "runs-compare", csv=csv, page=html) if csv or html else {}
    t = Table(title=f"{len(rt.table)} run(s) in {root}")
    cols = [c for c in rt.table.columns if c != "path"]
    for c in cols:
        t.add_column(HEADERS.get(c, c), justify="right" if c in SCORES or c == "train_s" else "left")
    for _, row in rt.table.iterrows():
        t.add_row(*["n/a" if (c in SCORES and row[c] != row[c]) else f"{row[c]:.3f}" if c in SCORES
                    else f"{row[c]:.1f}" if c == "train_s" else str(row[c]) for c in cols])
    if not quiet:
        console.print("settings that differ: " + (", ".join(rt.settings) or "none"), markup=False, soft_wrap=True)
        console.print(t)
        if rt.skipped:
            console.print(f"unfinished runs left out: {', '.join(rt.skipped)}", markup=False, soft_wrap=True)
    for kind, path in paths.items():
        print_paths(console, f"{kind}:", path)
