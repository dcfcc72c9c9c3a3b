"""``python -m jacc.numpy_api [OUT]``: write the NumPy coverage page (default docs/numpy-coverage.md)."""

import os
import sys

from ..fileio import write_atomic
from . import coverage_markdown

DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "numpy-coverage.md")

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(DEFAULT)
    write_atomic(out, coverage_markdown() + "\n")
    print(f"wrote {out}")
