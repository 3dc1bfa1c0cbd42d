"""`python -m viewer --db results.db`: serve the live view."""

import sys

from viewer.cli import run

if __name__ == "__main__":
    sys.exit(run())
