"""``python -m archfit``: the command line (see :mod:`archfit.cli`)."""
from archfit.cli import run

if __name__ == "__main__":
    run()
