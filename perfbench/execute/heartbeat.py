"""A line on the terminal while one phase of a group runs long, so a long compile or long rounds
never look like a hang, and a hang is seen for what it is before the limit stops it.

The worker reports phases ("preparing ...", "timing 3 arms: ..."); the parent, which waits for
rows anyway, calls `tick` while it waits: every `every` seconds without a new phase it says what
the worker is doing, for how long, and (when one piece of work has run that long) how much of its
limit (`perfbench.measure.step_limit`) is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

HEARTBEAT_S = 10.0


class Heartbeat:
    """Says "still <phase>: N s so far" every `every` seconds of one phase."""

    def __init__(
        self,
        say: Callable[[str], None],
        every: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say, self.every, self.clock = say, every, clock
        self.text = ""
        self.started = self.last = clock()

    def phase(self, text: str) -> None:
        """A new phase began (its own line was printed): the next beat is `every` from now."""
        self.text = text
        self.started = self.last = self.clock()

    def tick(self, busy_s: float, limit_s: float | None, is_step: bool) -> None:
        """`busy_s`: how long the current piece of work (a step, or the phase) has run."""
        now = self.clock()
        if not self.text or now - self.last < self.every:
            return
        self.last = now
        line = f"still {self.text}: {now - self.started:.0f} s so far"
        if busy_s >= self.every:
            what = "one step" if is_step else "this phase"
            of = f" of its {limit_s:.0f} s limit" if limit_s is not None else " (no limit)"
            line += f"; {what} has run {busy_s:.0f} s{of}"
        self.say(line)
