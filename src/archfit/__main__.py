"""``python -m archfit``: the command line (see :mod:`archfit.cli`)."""
import sys

from archfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
