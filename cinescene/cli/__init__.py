"""``python -m cinescene``: the command line over the same core functions the app uses.

One module per command group (``sample``, ``adapters``, ``evaluate``, ``review_ab``,
``sweep``, ``train``, ``review``, ``study``, ``toy``); what they share (flags derived from the settings
dataclasses, progress bars) is in ``common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..environment import quiet_libraries
from ..errors import CinesceneError
from . import adapters, evaluate, review, review_ab, sample, study, sweep, toy, train
from .common import Parser

# Each adds its subcommands with add_parsers(sub).
GROUPS = (sample, adapters, evaluate, review_ab, sweep, train, review, study, toy)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m cinescene", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for records that cite it
    try:
        return int(args.func(args))
    except CinesceneError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
