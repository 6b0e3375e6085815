"""`python3 -m reports DIR [--out REPORT_DIR]` (see reports/cli.py)."""
import sys

from .cli import main

sys.exit(main())
