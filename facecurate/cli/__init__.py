"""facecurate's command line: parse, call one stage of ``facecurate.curate`` / ``facecurate.train``, render its result.

``facecurate --help`` (or ``python -m facecurate --help``). No logic lives here: ``app`` holds the Typer
application, ``summaries`` draws progress and summaries, one module per group of commands.
"""
from __future__ import annotations

import sys

from . import inspect, synth, crop, embed, audit, training, toolkit, runs  # noqa: F401, I001  (each registers its commands on ``app``; this order is --help's)
from .app import app

__all__ = ["app", "main"]


def main() -> None:
    """The console script's entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
