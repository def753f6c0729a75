"""The one exception type the CLI turns into a single clear line and exit code 2."""


class InputError(Exception):
    """Bad user input (a path, a CSV, an option): the message names the file and the problem."""
