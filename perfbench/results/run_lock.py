"""The lock a live run holds on its folder: `run.lock`, naming its holder (pid, host, start time).

Why flock and a file, not the file alone: an O_EXCL file says "someone created me", not "someone
alive holds me"; a run killed with SIGKILL leaves it behind and every later run would be refused.
The kernel drops an flock when its holder dies, so the lock itself is exact on one host, and the
file's content says who held it: a lock we can take over a file that still names a holder is a
stale lock (its holder died without releasing), which is reported and taken over. A holder on
another host (a shared file system, where flock may not reach across machines) is never taken
over: perfbench cannot tell whether it still runs, so the refusal says how to remove the lock.

The holder removes the file while still holding the flock, so a lock file that exists with content
after we take the flock is always stale; a racer that opened the old file before it was removed
sees, after locking, that its inode is no longer the path's, and tries again.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_NAME = "run.lock"


class RunFolderError(Exception):
    """A run folder that this run may not use (held, foreign, finished, different): exit 2."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError as err:
        return err.errno != errno.ESRCH
    return True


def _holder_text(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')}, started "
        f"{holder.get('started_at')}" + (f": {holder['command']}" if holder.get("command") else "")
    )


def _read_holder(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        return {"pid": None, "host": None, "started_at": None, "command": f"(unreadable: {text!r})"}
    return holder if isinstance(holder, dict) else {}


@dataclass
class RunLock:
    """A held `run.lock`; `took_over` describes the stale lock it replaced (None: there was none)."""

    path: Path
    fd: int
    took_over: str | None = None

    @classmethod
    def acquire(cls, folder: Path, command: str = "") -> RunLock:
        """Take the folder's lock or raise RunFolderError naming who holds it."""
        path = Path(folder) / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd) or {}
                os.close(fd)
                raise RunFolderError(
                    f"{folder} is in use by another perfbench run ({_holder_text(holder)}); "
                    "wait for it to finish, or choose another --out"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the new one
        try:
            took_over = _stale(path, _read_holder(fd))
        except RunFolderError:
            os.close(fd)
            raise
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode())
        os.fsync(fd)
        return cls(path, fd, took_over)

    def release(self) -> None:
        """Remove the file while still holding the flock, then let go (module docstring)."""
        if self.fd < 0:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1


def _stale(path: Path, holder: dict[str, Any] | None) -> str | None:
    """What stale lock we are taking over (None: none); RunFolderError when it may be live."""
    if holder is None:
        return None
    host, pid = holder.get("host"), holder.get("pid")
    if host and host != socket.gethostname():
        raise RunFolderError(
            f"{path.parent} is locked by a run on another machine ({_holder_text(holder)}); "
            f"perfbench cannot tell from here whether it still runs. If it does not, delete "
            f"{path} and run again"
        )
    if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
        raise RunFolderError(
            f"{path} names a live process ({_holder_text(holder)}) that does not hold the lock "
            f"(its pid reused?). If no perfbench run writes into {path.parent}, delete {path}"
        )
    return f"took over a stale lock: {_holder_text(holder)}; that process is no longer running"
