"""The `--wait-quiet[=SECONDS]` flag of `perfbench run` (what it does: perfbench.measure.quiet)."""

from __future__ import annotations

import argparse

from perfbench.measure.quiet import DEFAULT_WAIT_S


def add_wait_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """`perfbench run --wait-quiet[=SECONDS]`."""
    parser.add_argument(
        "--wait-quiet",
        type=float,
        nargs="?",
        const=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"before each group, wait up to SECONDS (default {DEFAULT_WAIT_S:g}) until other "
        "processes leave the point's threads free; the rows record the wait and whether it gave up",
    )
