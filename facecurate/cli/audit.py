"""`relabel-report`: flag likely mislabels; trains a quick out-of-fold model first when none is given."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..curate.audit.options import QuickModel, ReportOptions
from .app import THREADS_HELP, choices, command, config_option, either, flag, old_name, quiet_option, stage, verbose_option
from .summaries import relabel_summary


_R = ReportOptions()  # the defaults, written once: in the records
_Q = _R.quick


@command(name="relabel-report")
def relabel_report(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    oof: Optional[Path] = typer.Option(None, help="RUN/oof.parquet from `train` (out-of-fold probabilities); without it a quick K-fold is trained on the cache first."),
    out: Optional[Path] = typer.Option(None, help="Folder for report.html, issues.csv, overrides.csv.", show_default="artifacts/relabel/<cache name>"),
    pool: str = typer.Option(_R.pool, metavar=choices("mean", "log"), help="How a person's photo probabilities are pooled: mean (robust) or log (geometric mean, sharper)."),
    near_duplicates: bool = flag(_R.near_duplicates, help="Look for near-identical photos filed under different people with different labels."),
    max_hash_distance: int = typer.Option(_R.max_hash_distance, help="Near-duplicates: largest perceptual-hash Hamming distance (of 64 bits) for a candidate pair."),
    min_corr: float = typer.Option(_R.min_corr, help="Near-duplicates: smallest correlation of the 16x16 grey thumbnails to confirm a pair."),
    max_cards: int = typer.Option(_R.max_cards, help="At most this many people (highest scores) get a card in report.html; issues.csv has all."),
    age_bins: Optional[str] = typer.Option(None, help="Age cut points for the names shown, like 30,60.", show_default="the run's, else 30,60"),
    target_precision: float = typer.Option(_R.target_precision, help="Each kind's threshold is the lowest whose simulated precision reaches this; kinds that cannot are low-confidence candidates."),
    margin: float = typer.Option(_R.margin, help="No flag within this of a tie: a score needs at least 0.5 + margin."),
    draws: int = typer.Option(_R.draws, help="Simulated draws of injected errors per kind (more are added until 40 errors were injected)."),
    gate: float = typer.Option(_R.gate, help="Quality gate: a head's flags are on when its balanced accuracy's 95% lower bound reaches chance + gate x (1 - chance)."),
    include_candidates: bool = flag(_R.include_candidates, help="Also put the fixes of low-confidence kinds into overrides.csv."),
    embed: bool = flag(_R.embed, help="Compute the cache's face embeddings when it has none (as `facecurate embed`; kept in the cache). Off: no check reads faces."),
    probe: bool = flag(_R.probe, help="Fit a linear probe on the face embeddings (person-grouped folds) and combine it with the CNN's out-of-fold probabilities, head by head."),
    identity: bool = flag(_R.identity, help="Identity checks on the face embeddings: a stranger's photo in a person's folder, one person under two ids."),
    against: Optional[list[Path]] = typer.Option(None, "--against", help="Another cache (extra data, a pseudo-label cache, an eval set) to look for this cache's people in (identity leaks); repeat for several.", show_default="none", metavar="CACHE"),
    photo_quality: bool = flag(_R.photo_quality, help="Flag photos too dark, soft, small or grey to train on (an exclude suggestion each)."),
    folds: int = typer.Option(_Q.folds, help="Quick training (no --oof): number of person-grouped folds."),
    steps: int = typer.Option(_Q.steps, help="Quick training (no --oof): optimiser steps per fold, in whole epochs reaching it (a small cache trains as long as a large one)."),
    epochs: Optional[int] = typer.Option(_Q.epochs, help="Quick training (no --oof): epochs per fold instead of --steps.", show_default="from --steps"),
    model: str = typer.Option(_Q.model, help="Quick training (no --oof): timm model name, random init (the default is a narrow mobilenet: the quick run's steps cost ~40% less than train's default model's)."),
    img_size: str = typer.Option(_Q.img_size, metavar="HEIGHT[,WIDTH]", help="Quick training (no --oof): model input HEIGHT,WIDTH or HEIGHT (the width keeps the cache's aspect), as in train."),
    batch_size: int = typer.Option(_Q.batch_size, help="Quick training (no --oof): batch size."),
    device: Optional[str] = typer.Option(_Q.device, help="Quick training (no --oof): cpu, cuda or cuda:N.", show_default="cuda when present"),
    fold_workers: int = typer.Option(_Q.fold_workers, help="Quick training (no --oof): folds trained side by side in that many worker processes, each fold with its share of --threads (CPU only; 0 = one per core, up to --folds)."),
    seed: int = typer.Option(_R.seed, help="Quick training (no --oof) and the simulation: random seed."),
    threads: Optional[int] = typer.Option(_Q.threads, help=THREADS_HELP, show_default="torch's and OpenCV's choice"),
    verify: str = typer.Option(_R.verify, metavar=choices("quick", "full", "off"), help="Check the cache before use: quick (sizes and xxh3 checksums of every file), full (also labels and blank failed rows) or off."),
    config: Optional[Path] = config_option("folds: 5"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
    image_size: Optional[int] = old_name("--image-size", "--img-size"),
) -> None:
    """Flag likely mislabels from per-person consistency and out-of-fold predictions; propose overrides.csv."""
    from ..curate.audit import QUICK_RUN, report_folder, write_relabel_report
    from ..curate.audit.faces import check_identity, ensure_embeddings, labelled_rows, shared_groups, write_groups
    from ..curate.cache import load_cache
    from ..train import quick_oof, quick_plan

    with stage(quiet=quiet, verbose=verbose, threads=threads) as (console, progress):
        # every option, the cache and the output folder are checked before any training
        options = ReportOptions(pool=pool, near_duplicates=near_duplicates, max_hash_distance=max_hash_distance,
                                min_corr=min_corr, max_cards=max_cards, age_bins=age_bins, target_precision=target_precision,
                                margin=margin, draws=draws, gate=gate, include_candidates=include_candidates, seed=seed,
                                verify=verify, embed=embed, probe=probe, identity=identity,
                                against=tuple(str(a) for a in against or ()), photo_quality=photo_quality,
                                quick=QuickModel(folds=folds, steps=steps, epochs=epochs, model=model,
                                                 img_size=either(img_size, None if image_size is None else str(image_size)),
                                                 batch_size=batch_size, device=device, threads=threads,
                                                 fold_workers=fold_workers))
        opened = load_cache(cache, verify=options.verify)
        for other in options.against:  # a wrong --against fails before any work
            load_cache(other, verify="off")
        q = options.quick
        quick = dict(folds=q.folds, steps=q.steps, epochs=q.epochs, model=q.model, image_size=q.img_size,
                     batch_size=q.batch_size, device=q.device, seed=options.seed, threads=q.threads,
                     fold_workers=q.fold_workers)
        plan = None if oof is not None else quick_plan(opened, **quick)
        with report_folder(cache, out) as folder:
            opened = ensure_embeddings(opened, options, progress)  # before the quick model: a missing dlib fails first
            identity = check_identity(opened, labelled_rows(opened), options, progress)
            if plan is not None and shared_groups(identity):  # one face under two ids: its ids share a quick fold
                progress.note(f"relabel-report: {shared_groups(identity)} face(s) filed under more than one id; "
                              "the quick model keeps each one's ids in one fold")
                plan = quick_plan(opened, **quick, groups=write_groups(folder, identity))
            if plan is not None:
                progress.note(f"relabel-report: no --oof given; training a quick {q.folds}-fold {q.model} model "
                              f"({plan.epochs} epoch(s) per fold{'' if q.epochs else f' for at least {q.steps} steps'}, "
                              f"--img-size {q.img_size}) on {cache} for out-of-fold probabilities")
                oof = quick_oof(opened, folder / QUICK_RUN, plan, progress=progress)
            result = write_relabel_report(opened, oof, folder, options, progress=progress, identity=identity)
    relabel_summary(console, result, quiet)
