"""`relabel-report`: flag likely mislabels; trains a quick out-of-fold model first when none is given."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import command, config_option, either, flag, old_name, quiet_option, stage, verbose_option
from .summaries import relabel_summary


@command(name="relabel-report")
def relabel_report(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    oof: Optional[Path] = typer.Option(None, help="RUN/oof.parquet from `train` (out-of-fold probabilities); without it a quick K-fold is trained on the cache first."),
    out: Optional[Path] = typer.Option(None, help="Folder for report.html, issues.csv, overrides.csv.", show_default="artifacts/relabel/<cache name>"),
    pool: str = typer.Option("mean", help="How a person's photo probabilities are pooled: mean (robust) or log (geometric mean, sharper)."),
    near_duplicates: bool = flag(True, help="Look for near-identical photos filed under different people with different labels."),
    max_hash_distance: int = typer.Option(4, help="Near-duplicates: largest perceptual-hash Hamming distance (of 64 bits) for a candidate pair."),
    min_corr: float = typer.Option(0.97, help="Near-duplicates: smallest correlation of the 16x16 grey thumbnails to confirm a pair."),
    max_cards: int = typer.Option(1000, help="At most this many people (highest scores) get a card in report.html; issues.csv has all."),
    age_bins: Optional[str] = typer.Option(None, help="Age cut points for the names shown, like 30,60.", show_default="the run's, else 30,60"),
    target_precision: float = typer.Option(0.8, help="Each kind's threshold is the lowest whose simulated precision reaches this; kinds that cannot are low-confidence candidates."),
    margin: float = typer.Option(0.1, help="No flag within this of a tie: a score needs at least 0.5 + margin."),
    draws: int = typer.Option(8, help="Simulated draws of injected errors per kind (more are added until 40 errors were injected)."),
    gate: float = typer.Option(0.5, help="Quality gate: a head's flags are on when its balanced accuracy's 95% lower bound reaches chance + gate x (1 - chance)."),
    include_candidates: bool = flag(False, help="Also put the fixes of low-confidence kinds into overrides.csv."),
    folds: int = typer.Option(5, help="Quick training (no --oof): number of person-grouped folds."),
    epochs: int = typer.Option(6, help="Quick training (no --oof): epochs per fold."),
    model: Optional[str] = typer.Option(None, help="Quick training (no --oof): timm model name, random init.", show_default="mobilenetv3_small_100"),
    img_size: int = typer.Option(128, help="Quick training (no --oof): input height in pixels (the width keeps the cache's aspect)."),
    batch_size: int = typer.Option(64, help="Quick training (no --oof): batch size."),
    device: Optional[str] = typer.Option(None, help="Quick training (no --oof): cpu, cuda or cuda:N.", show_default="cuda when present"),
    seed: int = typer.Option(0, help="Quick training (no --oof) and the simulation: random seed."),
    threads: Optional[int] = typer.Option(None, help="Quick training (no --oof): CPU threads for torch, like train --threads (1 on a busy machine).", show_default="torch's choice"),
    verify: str = typer.Option("quick", help="Check the cache before use: quick (sizes and xxh3 checksums of every file), full (also labels and blank failed rows) or off."),
    config: Optional[Path] = config_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
    image_size: Optional[int] = old_name("--image-size", "--img-size"),
) -> None:
    """Flag likely mislabels from per-person consistency and out-of-fold predictions; propose overrides.csv."""
    from ..curate.audit import QUICK_RUN, prepare_report_dir, validate_options
    from ..curate.audit import relabel_report as run_relabel_report
    from ..curate.cache import load_cache
    from ..curate.labels import parse_age_bins
    from ..train import quick_oof, quick_plan

    img_size = either(img_size, image_size)
    with stage(quiet=quiet, verbose=verbose) as (console, progress):
        # every option and the output folder are checked before any training
        if age_bins is not None:
            parse_age_bins(age_bins)
        validate_options(pool, max_hash_distance, min_corr, max_cards, target_precision, margin, draws, gate)
        opened = load_cache(cache, verify=verify)
        quick = None if oof is not None else quick_plan(opened, folds=folds, epochs=epochs, model=model, image_size=img_size,
                                                        batch_size=batch_size, device=device, seed=seed, threads=threads)
        report_dir = prepare_report_dir(cache, out)
        if quick is not None:
            progress.note(f"relabel-report: no --oof given; training a quick {folds}-fold {model or 'default'} model "
                          f"({epochs} epoch(s), {img_size} px high) on {cache} for out-of-fold probabilities")
            oof = quick_oof(opened, report_dir / QUICK_RUN, quick, progress=progress)
        result = run_relabel_report(opened, oof=oof, out=report_dir, pool=pool, near_duplicates=near_duplicates,
                                    max_hash_distance=max_hash_distance, min_corr=min_corr, max_cards=max_cards,
                                    age_bins=age_bins, target_precision=target_precision, margin=margin, draws=draws,
                                    lift=gate, include_low=include_candidates, seed=seed, progress=progress)
    relabel_summary(console, result, quiet)
