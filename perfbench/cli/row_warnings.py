"""How the command line shows a damaged results.csv line (perfbench.results.reader warns; here
each warning becomes one `perfbench: warning: ...` line)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from perfbench.results.reader import DamagedRowsWarning


@contextmanager
def damaged_rows_to(stream: TextIO | None = None) -> Iterator[None]:
    """Inside this block, a DamagedRowsWarning prints once as `perfbench: warning: ...` on
    `stream` (default stderr), not as Python's file:line warning format; others pass through."""
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", DamagedRowsWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if not issubclass(category, DamagedRowsWarning):
                shown(message, category, filename, lineno, file, line)
            elif str(message) not in seen:
                seen.add(str(message))
                print(f"perfbench: warning: {message}", file=stream or sys.stderr, flush=True)

        warnings.showwarning = show
        yield
