"""What torch.compile did over a whole comparison group, timed rounds included.

Each compiled arm's own tracker (`backends.compile_facts`) is read right after its build, because
the trackers of earlier arms also see later arms' compiles. What the warm-up and the timed rounds
compile would be missing from those facts, and that is where a forward that branches on a Python
value recompiles until dynamo gives up: past `torch._dynamo.config.recompile_limit` dynamo stops
compiling that frame and runs it eagerly from then on (it only says so in a log warning). So,
while a group runs:

- a logging handler on dynamo's `convert_frame` logger catches the recompile-limit warning, with
  the function and the guard's file:line dynamo names;
- an end-of-compile callback counts the compiles after the builds (dynamo's reset inside the first
  compiled arm's prepare drops callbacks, so it is registered again at every phase change; the
  last one, "warming up ... arms", is before the warm-up);
- both are attributed to the point that was running (`Activity.begin` is called before every
  step), and `merge_into` adds them to each arm's build-time facts after the rounds.

One group runs at a time in a worker process, so the watch of the running group is a module
global (`active()`), read by the code after the rounds without threading it through every call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from perfbench.results import facts

LOGGER = "torch._dynamo.convert_frame"
FIX = (
    "mark the value dynamic (torch._dynamo.mark_dynamic for a tensor dimension, or "
    "torch._dynamo.config.allow_unspec_int_on_nn_module for a module's int attribute) or make it "
    "a tensor, so the guard stops failing on every call"
)
_STACK_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ACTIVE: CompileWatch | None = None


@dataclass(frozen=True)
class LimitHit:
    """Dynamo's recompile-limit warning: which limit, the function it stopped compiling, the
    guard that kept failing and the user's line behind it."""

    limit: str  # recompile_limit | accumulated_recompile_limit
    value: int
    function: str  # "'forward' (path:line)" as dynamo formats it
    where: str  # path:line of the user's code behind the failing guard ("" when not named)
    reason: str  # the last failing guard, first line
    point_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_hit(record: logging.LogRecord, point_id: int | None) -> LimitHit | None:
    """The LimitHit in a dynamo log record, or None when the record is not that warning."""
    if "hit config.%s" not in str(record.msg) or not isinstance(record.args, tuple):
        return None
    args = [*record.args, "", "", "", ""][:4]
    reason = str(args[3])
    stack = _STACK_LINE.findall(reason)
    where = f"{stack[-1][0]}:{stack[-1][1]}" if stack else ""
    value = int(args[1]) if str(args[1]).isdigit() else -1
    first = reason.splitlines()[0] if reason else ""
    return LimitHit(str(args[0]), value, str(args[2]), where, " ".join(first.split()), point_id)


class _Handler(logging.Handler):
    def __init__(self, watch: CompileWatch) -> None:
        super().__init__(logging.WARNING)
        self.watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        hit = parse_hit(record, self.watch.current)
        if hit is not None:
            self.watch.hits.append(hit)


class CompileWatch:
    """Recompile-limit hits and post-build compile ids of one group, by point id."""

    def __init__(self) -> None:
        self.current: int | None = None
        self.hits: list[LimitHit] = []
        self.ids: dict[int | None, list[str]] = {}
        self._handler = _Handler(self)

    def follow(self, begin: Callable[..., None]) -> Callable[..., None]:
        """`begin` that also remembers the running point (and re-registers the compile callback
        at every phase change)."""

        def followed(point_id: int, phase: str = "") -> None:
            self.current = point_id
            if phase:
                self._register()
            begin(point_id, phase)

        return followed

    def _on_compile_end(self, args: Any) -> None:
        self.ids.setdefault(self.current, []).append(str(getattr(args, "compile_id", "?")))

    def _register(self) -> None:
        import torch

        handler = torch._dynamo.callback.callback_handler
        if self._on_compile_end not in handler.end_callbacks:
            handler.register_end_callback(self._on_compile_end)

    def _unregister(self) -> None:
        import torch

        handler = torch._dynamo.callback.callback_handler
        if self._on_compile_end in handler.end_callbacks:
            handler.remove_end_callback(self._on_compile_end)

    def merge_into(self, point_id: int, arm_facts: dict[str, Any], compiled: bool) -> None:
        """Add what happened after the build to one arm's build-time compile facts; a compiled
        arm also gets the group's recompile-limit hit (dynamo counts a frame's compiles per
        code object, which every compiled arm of the group shares)."""
        # the callback is registered again before every arm's build, so it also saw the builds
        # of the arms after the first compiled one: their ids are in the build-time facts
        from perfbench.backends.compile_facts import MAX_IDS, recompiles  # torch: not for --help

        built = set(arm_facts.get(facts.COMPILE_IDS, []))
        later = [i for i in self.ids.get(point_id, []) if i not in built]
        if later:
            ids = [*arm_facts.get(facts.COMPILE_IDS, []), *later]
            arm_facts[facts.COMPILES] = int(arm_facts.get(facts.COMPILES) or 0) + len(later)
            arm_facts[facts.RECOMPILES] = recompiles(ids)
            arm_facts[facts.COMPILE_IDS] = ids[:MAX_IDS]
            arm_facts[facts.COMPILED_WHILE_TIMED] = len(later)
        if compiled and self.hits:
            arm_facts[facts.RECOMPILE_LIMIT] = {**self.hits[0].as_dict(), "fix": FIX}


@contextmanager
def watching() -> Iterator[CompileWatch]:
    """The watch of one group: dynamo's log handler on, the watch `active()`; both undone after."""
    global _ACTIVE
    watch = CompileWatch()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(watch._handler)
    _ACTIVE = watch
    try:
        yield watch
    finally:
        _ACTIVE = None
        logger.removeHandler(watch._handler)
        watch._unregister()


def active() -> CompileWatch | None:
    """The running group's watch (None outside `watching`)."""
    return _ACTIVE


def partly_eager(hit: dict[str, Any]) -> str:
    """The verdict's caveat: the timed code was partly eager."""
    at = f" (guard at {hit['where']})" if hit.get("where") else ""
    return (
        f"the timed code was partly eager: torch.compile hit {hit['limit']} ({hit['value']}) on "
        f"{hit['function']}{at} and ran the rest of the calls uncompiled"
    )


def merge_after_rounds(arms: list[Any]) -> None:
    """Every arm's (`group_timing.Arm`) compile facts now cover the whole point."""
    watch = active()
    if watch is None:
        return
    for arm in arms:
        compiled = facts.COMPILE_MODE in arm.workload.info
        watch.merge_into(arm.task.point_id, arm.compile_facts, compiled and not arm.control)


def caveat_verdicts(arms: list[Any]) -> None:
    """A compiled arm that hit the recompile limit says in its verdict that it was partly eager."""
    for arm in arms:
        hit = arm.compile_facts.get(facts.RECOMPILE_LIMIT)
        if hit and not arm.control:
            reason = arm.row.verdict_reason
            arm.row.verdict_reason = (
                f"{reason}; {partly_eager(hit)}" if reason else partly_eager(hit)
            )
