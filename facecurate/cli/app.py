"""The Typer application every command module registers on, the options all commands share, and the CLI's one
answer to bad input.

Shared here: ``-h`` / ``--help``, ``--version``, shell completion, ``--config FILE`` (any command's options from a
YAML or JSON file; the command line still wins), ``--quiet`` / ``--verbose``, old option spellings that keep
working for one release with a notice, and a usage line that names arguments as users type them.
"""
from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import typer
import typer.core
from rich.console import Console

from .. import __version__
from ..curate.errors import InputError
from .summaries import RichProgress

DATA_HELP = ("A dataset: a folder with train.csv + images/ (competition train layout), a folder with "
             "info.csv + images/ (eval layout), a CSV with a path column, or a plain folder of photos.")


def _quiet_help_option(option: click.Option | None) -> click.Option | None:
    if option is not None:
        option.metavar = ""  # a flag takes no value: no <bool> after it
    return option


#: Per command: option name -> rich help panel (``train --help``'s ~55 options in groups); set by the command's module.
HELP_PANELS: dict[str, dict[str, str]] = {}


def _plain_default(param: click.Parameter) -> None:
    """``[default: x]`` for a default given in words (typer writes ``[default: (x)]``): one style on every screen."""
    if isinstance(getattr(param, "show_default", None), str) and hasattr(param, "_get_default_string"):
        text = param.show_default
        param._get_default_string = lambda **_: text  # noqa: SLF001 - typer's own hook for this string


def _no_list_type(param: click.Parameter) -> None:
    """An argument taking several values reads ``<path>...`` in --help, not typer's ``<list[Path]>``."""
    if isinstance(param, typer.core.TyperArgument) and param.nargs != 1 and not getattr(param, "_plain_list", False):
        shown = param.display_type_rich
        param.display_type_rich = lambda ctx: re.sub(r"<list\[(\w+)\]>", lambda m: f"<{m.group(1).lower()}>...",
                                                     shown(ctx) or "")
        param._plain_list = True


def _no_flag_metavars(params: list, command: str | None = None) -> list:
    panels = HELP_PANELS.get(command or "", {})
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""  # typer's completion flags and any other flag: no <bool>
        _plain_default(p)
        _no_list_type(p)
        if p.name in panels and getattr(p, "rich_help_panel", None) is None:
            p.rich_help_panel = panels[p.name]
    if panels:  # the panels in the order their names are listed (typer draws them in order of first appearance)
        order = list(dict.fromkeys(panels.values()))
        params = sorted(params, key=lambda p: order.index(panels[p.name]) if p.name in panels else len(order))
    return params


def choices(*names: str) -> str:
    """The metavar of an option with a fixed set of values, ``[a|b|c]`` (the stage checks the value: one line)."""
    return "[" + "|".join(names) + "]"


class Command(typer.core.TyperCommand):
    """A command whose usage line reads ``[OPTIONS] DATA`` (not ``{data}``) and whose --help takes no metavar."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, typer.core.TyperArgument):
                name = (p.metavar or p.name or "").upper()
                pieces.append(name if p.required else f"[{name}]")
        return pieces

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _quiet_help_option(super().get_help_option(ctx))

    def get_params(self, ctx: click.Context) -> list:
        return _no_flag_metavars(super().get_params(ctx), self.name)


class Group(typer.core.TyperGroup):
    """The top-level group: commands listed in the order they are registered (the pipeline's order)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_params(self, ctx: click.Context) -> list:
        return _no_flag_metavars(super().get_params(ctx))

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _quiet_help_option(super().get_help_option(ctx))


app = typer.Typer(
    cls=Group,
    add_completion=True,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="facecurate: curate a face-photo dataset into cached tensors and train a classifier on it.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facecurate {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, metavar="",
                                 help="Print facecurate's version and exit."),
) -> None:
    """facecurate: curate a face-photo dataset into cached tensors and train a classifier on it."""
    if ctx.invoked_subcommand is None:  # bare `facecurate`: the help, and success (asking for help is no mistake)
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def command(**kwargs) -> Callable:
    """``app.command`` with facecurate's command class (usage line, -h)."""
    return app.command(cls=Command, **kwargs)


def flag(default: bool, *names: str, help: str, **kwargs) -> Any:
    """A boolean option (``--x / --no-x``): shown without a ``<bool>`` metavar."""
    return typer.Option(default, *names, help=help, metavar="", **kwargs)


# --------------------------------------------------------------------- --config FILE

def read_config_file(path: Path) -> dict:
    """A YAML or JSON file of options -> {name: value}; InputError naming the file when it is not one."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # yaml.YAMLError, json.JSONDecodeError
        raise InputError(f"{path}: not valid {'YAML' if Path(path).suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                         f"({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file holds a mapping of option names to values")
    return data


#: Per command: how a file's keys map to option names when they differ (train reads its own config.json back).
CONFIG_TRANSLATORS: dict[str, Callable[[dict], dict]] = {}


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None or ctx.resilient_parsing:
        return value
    try:
        data = read_config_file(value)
        translate = CONFIG_TRANSLATORS.get(ctx.command.name or "")
        if translate is not None:
            data = translate(data)
        names = {p.name: p for p in ctx.command.params if p.name and p.name not in ("config",)}
        options = {}
        for key, v in data.items():
            name = str(key).replace("-", "_").lstrip("_")
            if name not in names:
                raise InputError(f"{value}: '{key}' is not an option of `{ctx.command.name}` (see its --help)")
            options[name] = v
    except InputError as e:
        fail(str(e))
    ctx.default_map = {**(ctx.default_map or {}), **options}  # the command line still overrides these
    return value


def config_option(example: str = "epochs: 20") -> Any:
    """``--config FILE``; ``example``: one of the command's own options as a YAML line, shown in its help."""
    return typer.Option(None, "--config", callback=_load_config, is_eager=True, exists=False, dir_okay=False,
                        help="Read this command's options from a YAML or JSON file (option names as keys, e.g. "
                             f"{example}); options given on the command line win.")


# --------------------------------------------------------------------- old spellings

def renamed(new: str) -> Callable:
    """Callback of a hidden old option name: a one-line notice naming the new one (the value still counts)."""
    def notice(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not ctx.resilient_parsing:
            typer.echo(f"note: {param.opts[0]} is now {new}; the old name works until the next release", err=True)
        return value
    return notice


def old_name(name: str, new: str, **kwargs) -> Any:
    """A hidden option under an old spelling, kept for one release (its value is taken when the new one is not given)."""
    return typer.Option(None, name, hidden=True, callback=renamed(new), **kwargs)


def either(new: Any, old: Any) -> Any:
    """The value of an option given under its new or its old name (the old one when it was given)."""
    return old if old is not None else new


# --------------------------------------------------------------------- running a stage

def fail(message: str) -> None:
    """One clear line on stderr and exit code 2: the CLI's answer to bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def quiet_option() -> Any:
    return typer.Option(False, "--quiet", "-q", metavar="", help="Print only the result (no progress bars or notes).")


def verbose_option() -> Any:
    return typer.Option(False, "--verbose", "-v", metavar="", help="Also print what each step did and how long it took.")


THREADS_HELP = "CPU threads for torch and OpenCV in this process (1 on a busy or shared machine)."


def threads_option() -> Any:
    """``--threads N``: the same option, with the same meaning (``curate.devices.cpu_threads``), on every command that computes."""
    return typer.Option(None, "--threads", help=THREADS_HELP, show_default="torch's and OpenCV's choice")


@contextlib.contextmanager
def stage(interrupted: str | None = None, quiet: bool = False, verbose: bool = False,
          threads: int | None = None) -> Iterator[tuple[Console, RichProgress]]:
    """Run one stage: a console and live progress bars; InputError -> one line, exit 2; Ctrl-C -> ``interrupted``.

    ``quiet``: no bars and no notes; ``verbose``: every finished step is logged with its time; ``threads``: the
    stage's CPU threads (``--threads``).
    """
    from ..curate.devices import cpu_threads

    console = Console(highlight=False, quiet=False)
    try:
        with cpu_threads(threads), RichProgress(console, enabled=not quiet, verbose=verbose) as progress:
            yield console, progress
    except InputError as e:
        fail(str(e))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted)
