"""The Typer application every command module registers on, and the CLI's one answer to bad input."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from ..curate.errors import InputError
from .render import RichProgress

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="facecurate: curate a face-photo dataset into cached tensors and train a classifier on it.",
)

DATA_HELP = ("A dataset: a folder with train.csv + images/ (competition train layout), a folder with "
             "info.csv + images/ (eval layout), a CSV with a path column, or a plain folder of photos.")


def fail(message: str) -> None:
    """One clear line on stderr and exit code 2: the CLI's answer to bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def stage(interrupted: str | None = None) -> Iterator[tuple[Console, RichProgress]]:
    """Run one stage: a console and live progress bars; InputError -> one line, exit 2; Ctrl-C -> ``interrupted``."""
    console = Console(highlight=False)
    try:
        with RichProgress(console) as progress:
            yield console, progress
    except InputError as e:
        fail(str(e))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted)
