"""The arguments of `perfbench ceilings` (the measuring itself is `perfbench.measure.ceilings`, which
prints nothing and parses nothing). Imported only when the ceilings subcommand is built: its
defaults ask torch whether CUDA is there, and `perfbench --help` must not import torch."""

from __future__ import annotations

import argparse

import torch

from perfbench.measure.ceilings import BUDGET_S, ROUNDS


def add_ceilings_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `perfbench ceilings` (the CLI owns the subparser; this fills it)."""
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda[:N] (default: cuda when available)",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="measure again even when the cache has this device"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads to measure with (default 1, as a point's default); a sweep at other "
        "thread counts needs its own ceilings",
    )
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"rounds; the best counts (default {ROUNDS})"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET_S,
        help=f"seconds of timed work per measurement, as for a point (default {BUDGET_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
