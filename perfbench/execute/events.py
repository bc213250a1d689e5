"""What a running sweep tells its caller, and what a measuring process tells the executor.

Two kinds of small frozen dataclasses, so that a handler names the fields it reads (a misspelt
one is an AttributeError at once, not a silent `None` from a string-keyed dict):

- progress events, handed to the `progress` callback of `perfbench.run()`, `launch()` and every
  executor: `GroupStarted`, `Phase`, `PointDone`, `RepetitionStarted`, `RunWarning`,
  `Interrupted`. This is public API: a notebook's own callback matches on these types.
- messages from the measuring process to its parent (the local worker's pipe, the Ray task's
  stream): `RowReady`, `PhaseText`, `GroupDone`, and for Ray `WorkerFacts`, `Active`,
  `FilesReady`. Every one is picklable (Ray and the pipe both pickle).

A row travels as a `perfbench.results.row.Row` from the code that measured it to the run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perfbench.results.row import Row

if TYPE_CHECKING:
    from perfbench.plan.run_plan import ComparisonGroup
    from perfbench.results.axes import Point


# --- progress events (the caller's callback) ------------------------------------------------


@dataclass(frozen=True)
class GroupStarted:
    """A comparison group starts (`number` of `groups`); `host`: where, when not here."""

    number: int
    groups: int
    group: ComparisonGroup
    host: str = ""


@dataclass(frozen=True)
class Phase:
    """Inside a long group: preparing / warming up / timing, or a heartbeat while a phase runs."""

    text: str


@dataclass(frozen=True)
class PointDone:
    """A point's row is final and written to results.csv (`index` counts from 0 of `total`)."""

    index: int
    total: int
    point: Point
    row: Row


@dataclass(frozen=True)
class RepetitionStarted:
    """`--repeat N`: repetition `number` of `of` starts, in fresh workers."""

    number: int
    of: int


@dataclass(frozen=True)
class RunWarning:
    """Something the user should know that is not a point's result (an executor's caveat)."""

    message: str


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C: the sweep stopped after `done` of `total` points; every row written is kept."""

    done: int
    total: int


ProgressEvent = GroupStarted | Phase | PointDone | RepetitionStarted | RunWarning | Interrupted
ProgressFn = Callable[[ProgressEvent], None]
RecordFn = Callable[[Row], None]


def ignore(event: ProgressEvent) -> None:
    """The default progress callback: nothing."""


# --- messages from the measuring process -----------------------------------------------------


@dataclass(frozen=True)
class RowReady:
    """One point's final row; `files`: artefacts written for it (Ray: path -> bytes)."""

    row: Row
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseText:
    """A phase of the group began (the local worker forwards it as a `Phase` event)."""

    text: str


@dataclass(frozen=True)
class GroupDone:
    """Every point of the group has its row."""


@dataclass(frozen=True)
class WorkerFacts:
    """Ray: where the task runs and with what (host, versions, GPU, ...), sent first."""

    facts: dict[str, Any]


@dataclass(frozen=True)
class Active:
    """Ray: the point the task works on now (None: between points) and for how long."""

    point_id: int | None
    elapsed_s: float


@dataclass(frozen=True)
class FilesReady:
    """Ray: artefacts written after the group's last row."""

    files: dict[str, bytes]


WorkerMessage = RowReady | PhaseText | GroupDone | WorkerFacts | Active | FilesReady
