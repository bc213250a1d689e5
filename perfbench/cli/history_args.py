"""The `perfbench history` subcommand's arguments: argparse only, so that building the parser
(every `perfbench` call does) imports neither SQLAlchemy nor pandas."""

from __future__ import annotations

import argparse
from pathlib import Path

from perfbench.history.store_location import DEFAULT_GATE_PCT, ENV_VAR


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    """The `history` subcommand's arguments."""
    p.add_argument("target", nargs="+", metavar="SCENARIO | import RUN_DIR...")
    p.add_argument(
        "--history",
        metavar="PATH|URL",
        help=f"the store (default: ${ENV_VAR} or history.sqlite under the user's cache folder)",
    )
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="AXIS=V",
        help="only points whose AXIS is V (repeatable)",
    )
    p.add_argument(
        "--across-machines",
        action="store_true",
        help="trend records of other machines and versions together (says so)",
    )
    p.add_argument("--html", type=Path, metavar="FILE", help="also write an offline page")
    p.add_argument(
        "--fail-on-regression",
        type=float,
        nargs="?",
        const=DEFAULT_GATE_PCT,
        metavar="PCT",
        help="exit 1 when the newest record of a point regressed "
        f"beyond PCT%% with 95%% confidence (default {DEFAULT_GATE_PCT:g})",
    )
