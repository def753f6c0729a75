"""The one exception type the CLI turns into a single clear line and exit code 2."""


def printable(text) -> str:
    """``text`` with bytes that are not UTF-8 (kept by Python as surrogates in file names) written as ``\\xff`` escapes,
    so a message or a CSV naming such a file can be printed and written."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class InputError(Exception):
    """Bad user input (a path, a CSV, an option): the message names the file and the problem (always printable)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(printable(message))
