"""``python -m facecurate``: the same command line as the ``facecurate`` console script."""
from .cli import main

main()
