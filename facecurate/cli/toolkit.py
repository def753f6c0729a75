"""`tune`, `explain`, `pseudo-label`, `ensemble`: the competition toolkit on top of a cache and run folders.

Each command checks its options, runs one stage of ``facecurate.train.toolkit`` and renders its result with
``summaries`` (``tune_summary``, ``explain_summary``, ``pseudo_summary``, ``ensemble_summary``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import DATA_HELP, choices, command, config_option, flag, quiet_option, stage, threads_option, verbose_option
from .summaries import ensemble_summary, explain_summary, pseudo_summary, tune_summary

DEVICE_HELP = "cpu, cuda or cuda:N."


@command()
def tune(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    trials: int = typer.Option(20, help="Finished trials the study should hold (a resumed tune runs only the missing ones); each trial is a K-fold `train` run."),
    timeout: Optional[float] = typer.Option(None, help="Stop starting trials after this many minutes (a running trial finishes).", show_default="no limit"),
    out: Optional[Path] = typer.Option(None, help="Tune folder: study.db (Optuna's SQLite storage: run again to continue), trials/, best.yaml, trials.csv, history.png, importance.png.", show_default="artifacts/tune/<cache name>"),
    folds: int = typer.Option(3, help="Person-grouped folds of every trial; the score is the out-of-fold 18-class macro F1."),
    models: str = typer.Option("mobilenetv3_small_100,resnet10t", help="timm models to choose among (one name: fixed)."),
    img_sizes: str = typer.Option("96,128", help="Input heights to choose among (the width keeps the cache's aspect)."),
    epochs: str = typer.Option("4,8", help="Epochs per fold, LOW,HIGH (one number: fixed): the epoch budget of a trial."),
    lr: str = typer.Option("3e-4,1e-2", help="Peak learning rate range LOW,HIGH, searched log-uniformly (one value: fixed)."),
    weight_decay: str = typer.Option("1e-3,0.1", help="AdamW weight decay range LOW,HIGH, log-uniform (one value: fixed)."),
    losses: str = typer.Option("ce,smooth,focal,f1", help="Losses to choose among (see `train --loss`)."),
    samplers: str = typer.Option("none,class,age", help="Samplers to choose among (see `train --sampler`)."),
    batch_size: int = typer.Option(32, help="Photos per training batch in every trial."),
    pruner: str = typer.Option("median", metavar=choices("median", "none"), help="median: stop a trial whose fold's best validation F1 so far is below the median of earlier trials at the same fold and epoch; none: run every trial to the end."),
    startup_trials: int = typer.Option(3, help="Trials that finish before the pruner may stop one (also TPE's random start)."),
    seed: int = typer.Option(0, help="Seed of the folds, the training and the sampler."),
    groups: Optional[Path] = typer.Option(None, help="person,group CSV (relabel-report's identity_groups.csv): ids with one group are one person and share a fold in every trial (train --groups)."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP, show_default="cuda when present"),
    threads: Optional[int] = threads_option(),
    verify: str = typer.Option("quick", metavar=choices("quick", "full", "off"), help="Check the cache first: quick (sizes and xxh3 checksums), full or off."),
    config: Optional[Path] = config_option("trials: 40"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Search training settings with Optuna on person-grouped folds; writes best.yaml for `train --config`."""
    from ..curate.cache import load_cache
    from ..train.toolkit.tune import default_tune_dir
    from ..train.toolkit.tune import tune as run_tune
    from ..train.toolkit.tune_space import parse_space

    out = out or default_tune_dir(cache)
    with stage(f"interrupted; finished trials are saved in {out / 'study.db'}: run the same command to continue",
               quiet, verbose, threads) as (console, progress):
        space = parse_space(lr, weight_decay, losses, samplers, img_sizes, models, epochs)
        result = run_tune(load_cache(cache, verify=verify), out, space, trials=trials, timeout_min=timeout, folds=folds,
                          batch_size=batch_size, seed=seed, device=device, threads=threads, pruner=pruner,
                          startup_trials=startup_trials, progress=progress, groups=groups)
    tune_summary(console, result, out, cache, quiet)


@command()
def explain(
    run: Path = typer.Argument(..., help="A run folder written by `train`."),
    source: Optional[Path] = typer.Argument(None, help="What to explain: a cache folder, or a data set cropped with the run's settings (any layout `crop` reads: train.csv + images/, info.csv + images/, a CSV of paths, a folder of photos).", show_default="the run's own cache, out of fold"),
    out: Optional[Path] = typer.Option(None, help="Folder for mask.png, gender.png, age.png, index.html and explained.csv.", show_default="RUN/explain[-<name>]"),
    per_cell: int = typer.Option(4, help="Photos per side of a row: this many right and this many wrong predictions of each class."),
    layer: str = typer.Option("auto", help="Layer to explain: auto (the deepest feature stage at least 6 cells across at the run's input size) or a module name such as layer3 or blocks.4."),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP, show_default="cuda when present"),
    batch_size: int = typer.Option(32, help="Photos per Grad-CAM batch."),
    cache_root: Optional[Path] = typer.Option(None, help="Where the crops of a data set are looked for and written.", show_default="OUT/cache"),
    threads: Optional[int] = threads_option(),
    config: Optional[Path] = config_option("per_cell: 6"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Grad-CAM grids per head and class, right and wrong predictions side by side, and an HTML page."""
    from ..train.toolkit.explain import explain as run_explain

    with stage(quiet=quiet, verbose=verbose, threads=threads) as (console, progress):
        r = run_explain(run, source, out=out, per_cell=per_cell, layer=layer, device=device, batch_size=batch_size,
                        cache_root=cache_root, progress=progress)
    explain_summary(console, r, quiet)


@command(name="pseudo-label")
def pseudo_label(
    run: Path = typer.Argument(..., help="A run folder written by `train`: its fold ensemble labels the photos."),
    data: Path = typer.Argument(..., help="The unlabelled photos (e.g. the eval layout). " + DATA_HELP),
    min_confidence: float = typer.Option(0.9, help="Keep a photo when the ensemble's 18-class probability of its predicted class is at least this."),
    out: Optional[Path] = typer.Option(None, help="The pseudo-labelled cache to write (for `train --extra`).", show_default="artifacts/cache/<data name>-pseudo"),
    cache_root: Optional[Path] = typer.Option(None, help="Where the crops of DATA are looked for and written.", show_default="artifacts/cache"),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP + " For cropping and the model.", show_default="cuda when present"),
    batch_size: int = typer.Option(128, help="Photos per inference batch."),
    tta: bool = flag(True, help="Average each photo with its mirror image."),
    threads: Optional[int] = threads_option(),
    config: Optional[Path] = config_option("min_confidence: 0.95"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Write a cache of the photos the run predicts confidently, labelled with its predictions, for `train --extra`."""
    from ..train.toolkit.pseudo import default_pseudo_dir
    from ..train.toolkit.pseudo import pseudo_label as run_pseudo

    out = out or default_pseudo_dir(data)
    with stage(quiet=quiet, verbose=verbose, threads=threads) as (console, progress):
        r = run_pseudo(run, data, out, min_confidence=min_confidence, cache_root=cache_root, device=device,
                       batch_size=batch_size, tta=tta, progress=progress)
    pseudo_summary(console, r, quiet)


@command()
def ensemble(
    runs: list[Path] = typer.Argument(..., metavar="RUN...", help="Two or more run folders written by `train`."),
    data: Optional[Path] = typer.Option(None, help="Predict this data set with every run and combine them into submission.csv. " + DATA_HELP, show_default="none"),
    oof: bool = flag(False, help="Score every run and method on the runs' out-of-fold probabilities (stackers nested over the runs' shared folds)."),
    method: str = typer.Option("mean", metavar=choices("mean", "vote", "stack-lr", "stack-gb"), help="How --data's predictions are combined: mean (probabilities), vote (hard vote; ties to the higher mean), stack-lr or stack-gb (logistic regression / gradient boosting fitted on the runs' out-of-fold probabilities)."),
    balanced: bool = flag(True, help="Stackers weigh the classes inversely to their frequency (macro F1 counts every class alike)."),
    seed: int = typer.Option(0, help="Seed of the gradient-boosting stacker."),
    out: Optional[Path] = typer.Option(None, help="Folder for oof_scores.csv, oof.parquet, submission.csv, probs.parquet, ensemble.json.", show_default="artifacts/ensembles/<run>+<run>..."),
    cache_root: Optional[Path] = typer.Option(None, help="Where the crops of --data are looked for and written.", show_default="OUT/cache"),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP + " For cropping and the models.", show_default="cuda when present"),
    batch_size: int = typer.Option(128, help="Photos per inference batch."),
    tta: bool = flag(True, help="Average each photo with its mirror image."),
    threads: Optional[int] = threads_option(),
    config: Optional[Path] = config_option("method: vote"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Combine several runs: mean, hard vote or a stacker; --oof scores each method out of fold, --data predicts."""
    from ..train.toolkit.ensemble import default_ensemble_dir
    from ..train.toolkit.ensemble import ensemble as run_ensemble

    out = out or default_ensemble_dir(runs)
    with stage(quiet=quiet, verbose=verbose, threads=threads) as (console, progress):
        r = run_ensemble(runs, out, data=data, method=method, oof=oof, balanced=balanced, seed=seed, device=device,
                         cache_root=cache_root, batch_size=batch_size, tta=tta, progress=progress)
    ensemble_summary(console, r)
