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
    out: Optional[Path] = typer.Option(None, help="Folder for manifest.parquet, problems.csv and distributions.png (and, with --cache, quality.csv, quality_flags.csv and quality.png).", show_default="artifacts/inspect/<data name>"),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
    check_files: bool = flag(True, help="Open every photo's header to find empty, truncated, non-image or too small files."),
    show: int = typer.Option(20, help="How many problems to print (all are written to problems.csv)."),
    min_photo_size: int = typer.Option(32, help="Photos whose shorter side has fewer pixels are listed as problems (too small to hold a usable face)."),
    cache: Optional[Path] = typer.Option(None, help="The data's crop cache (from `crop`): also measure every cropped photo's quality (brightness, contrast, sharpness, entropy, colour, face and photo size, aspect), count the dark, light, blurry, low-information, grey, small-face, odd-size and odd-aspect photos, and write quality.csv, quality_flags.csv and quality.png (the worst photos).", show_default="no quality check"),
    quality_cuts: str = typer.Option("", help="Change the photo-quality cuts, e.g. 'dark_p99=0.25,softer=1.8,max_share=0.2' (names and defaults: the photo quality section of docs/inspect.md).", show_default="CleanVision's defaults + person-relative cuts"),
    config: Optional[Path] = config_option("show: 50"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Count people and photos per class, list the data's problems (empty and tiny classes too), and plot the distributions; with --cache, check every cropped photo's quality."""
    from ..curate.errors import InputError
    from ..curate.inspect import inspect_dataset
    from ..curate.photo_quality import QualityParams

    with stage(quiet=quiet, verbose=verbose) as (console, progress):
        try:
            cuts = QualityParams.parse(quality_cuts)
        except ValueError as e:
            raise InputError(f"--quality-cuts: {e}") from None
        result = inspect_dataset(data, out=out, age_bins=age_bins, check_files=check_files, min_photo_size=min_photo_size,
                                 cache=cache, quality=cuts, progress=progress)
    inspect_summary(console, result, show, quiet)
