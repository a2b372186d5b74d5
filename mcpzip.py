#!/usr/bin/env python3
"""Run mcpzip from a checkout or a vendored copy: ``python mcpzip.py serve``.

The package directory ``mcpzip/`` beside this file is used, whether or not
mcpzip is installed, so no install step is needed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcpzip.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
