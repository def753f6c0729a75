"""The original design's entry point: ``python cli.py crop DATA`` from a checkout works exactly like ``facecurate crop
DATA`` (the package stays the code; this file only puts the checkout first on the path and calls its CLI)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facecurate.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
