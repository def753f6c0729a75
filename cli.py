"""facecurate command line: parse, call one function of ``curate/`` or ``train/``, print a summary.

Run ``python cli.py --help`` (or ``facecurate --help`` once installed). No logic lives here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from curate.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="facecurate: curate a face-photo dataset into cached tensors and train a classifier on it.",
)

DATA_HELP = ("A dataset: a folder with train.csv + images/ (competition train layout), a folder with "
             "info.csv + images/ (eval layout), a CSV with a path column, or a plain folder of photos.")


def _fail(message: str) -> None:
    """One clear line on stderr and exit code 2: the CLI's answer to bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _not_built(command: str) -> None:
    _fail(f"`{command}` is not built yet")


@app.command()
def inspect(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Folder for the distribution PNG and manifest [default: artifacts/inspect/<data name>]."),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
    check_files: bool = typer.Option(True, help="Open every photo's header to find empty, truncated or non-image files."),
    show: int = typer.Option(20, help="How many problems to print (all are written to problems.csv)."),
) -> None:
    """Count people and photos per class, list the data's problems, and plot the class and age distributions."""
    from curate.inspect import inspect_dataset

    try:
        inspect_dataset(data, out=out, age_bins=age_bins, check_files=check_files, show=show)
    except InputError as e:
        _fail(str(e))


@app.command()
def crop(data: Path = typer.Argument(..., help=DATA_HELP)) -> None:
    """Detect and crop faces (batched MTCNN / MediaPipe), fall back on the person's other photos, cache tensors."""
    _not_built("crop")


@app.command(name="relabel-report")
def relabel_report(cache: Path = typer.Argument(..., help="A cache folder written by `crop`.")) -> None:
    """Flag likely mislabels from per-person consistency and out-of-fold predictions; propose overrides.csv."""
    _not_built("relabel-report")


@app.command()
def train(cache: Path = typer.Argument(..., help="A cache folder written by `crop`.")) -> None:
    """Train a timm classifier from the cache with person-grouped K-fold; writes a run folder."""
    _not_built("train")


@app.command()
def predict(run: Path = typer.Argument(..., help="A run folder written by `train`."),
            data: Path = typer.Argument(..., help=DATA_HELP)) -> None:
    """Crop new photos with the run's settings, ensemble folds + flip TTA, write submission.csv."""
    _not_built("predict")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
