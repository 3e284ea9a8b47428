"""Command line: ``archfit demo`` (also ``python -m archfit demo``)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archfit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit a network to the shipped digits data")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split and the fit")
    demo.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from archfit.demo import run
        try:
            run(seed=args.seed, epochs=args.epochs)
        except (TypeError, ValueError) as exc:
            print(f"archfit: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
