"""The real CLI run in-process, and the checks that it refused bad input the house way: what the robustness tests share."""
from __future__ import annotations

from click.testing import Result
from typer.testing import CliRunner

from facecurate.cli import app


def cli(*args) -> Result:
    """``facecurate ARGS`` in-process (each argument as str): its exit code, stdout, stderr and exception."""
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(r: Result, *needles: str) -> str:
    """Exit code 2, one line on stderr starting 'error:' that names what is wrong (holds every one of ``needles``), no
    traceback; returns the line. Progress shown before a failure found mid-run is allowed: see ``refused_quietly``."""
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def refused_quietly(r: Result, *needles: str) -> str:
    """``refused``, and nothing else on the screen (no bars, no blank lines): input refused before any work began."""
    line = refused(r, *needles)
    assert r.stdout.strip() == "", r.stdout
    return line
