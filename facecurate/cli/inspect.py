"""`inspect`: look at a data set before anything else reads it: counts per class, problems, distributions."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import DATA_HELP, command, config_option, flag, quiet_option, stage, verbose_option
from .summaries import inspect_summary


@command()
def inspect(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Folder for manifest.parquet, problems.csv and distributions.png.", show_default="artifacts/inspect/<data name>"),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
    check_files: bool = flag(True, help="Open every photo's header to find empty, truncated, non-image or too small files."),
    show: int = typer.Option(20, help="How many problems to print (all are written to problems.csv)."),
    min_photo_size: int = typer.Option(32, help="Photos whose shorter side has fewer pixels are listed as problems (too small to hold a usable face)."),
    config: Optional[Path] = config_option("show: 50"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Count people and photos per class, list the data's problems (empty and tiny classes too), and plot the distributions."""
    from ..curate.inspect import inspect_dataset

    with stage(quiet=quiet, verbose=verbose) as (console, progress):
        result = inspect_dataset(data, out=out, age_bins=age_bins, check_files=check_files, min_photo_size=min_photo_size)
    inspect_summary(console, result, show, quiet)
