"""One run at a time per output folder: `.selfalign/lock` names the holder's host and pid.

Two runs writing one folder would each record shards the other overwrites. The lock is made
with a hard link of a finished file, which is atomic on local and network file systems alike,
so the lock file is never seen half-written (where hard links are not supported, an exclusive
create does the same job). A lock whose process is gone (on this host) is stale and is taken
over; a holder on another host cannot be checked from here, so the message says how to clear
it by hand.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from selfalign.errors import UserError
from selfalign.store.layout import LOCK, lock_path


def read_holder(out: Path) -> dict | None:
    try:
        return json.loads(lock_path(out).read_text(encoding="utf-8"))
    except OSError:  # none, or a folder we cannot read: the output folder checks say so
        return None
    except ValueError:  # not ours to read: treated as held, and the message says how to clear it
        return {"host": "?", "pid": None}


def holder_alive(holder: dict) -> bool | None:
    """Whether the holding process still runs; None when it cannot be told from this host."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return None
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def describe(holder: dict) -> str:
    since = holder.get("since")
    started = f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" \
        if isinstance(since, (int, float)) else ""
    return f"process {holder.get('pid')} on host {holder.get('host')}{started}"


def _held(out: Path, holder: dict) -> UserError:
    if holder_alive(holder):
        return UserError(f"{out} is being written by another run ({describe(holder)}); wait for "
                         f"it to finish, stop it, or choose another --out. (If that process is "
                         f"not a selfalign run, its id was reused: delete {lock_path(out)})")
    return UserError(f"{out} is locked by {describe(holder)}, which cannot be checked from this "
                     f"host ({socket.gethostname()}). If that run is gone, delete "
                     f"{lock_path(out)} and run again")


def refuse_if_locked(out: Path) -> None:
    """Before any other check: a folder another run is writing is refused, naming the holder."""
    holder = read_holder(out)
    if holder is not None and holder_alive(holder) is not False:
        raise _held(out, holder)


@contextmanager
def output_lock(out: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the folder's lock for the run; released at exit, on errors too."""
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    _acquire(out, mine, log)
    try:
        yield
    finally:
        if read_holder(out) == mine:
            lock_path(out).unlink(missing_ok=True)


def _acquire(out: Path, mine: dict, log: Callable[[str], None]) -> None:
    path = lock_path(out)
    staged = path.with_name(f".{LOCK}.{mine['host']}.{mine['pid']}.tmp")
    staged.write_text(json.dumps(mine), encoding="utf-8")
    try:
        for _ in range(3):  # the holder may vanish between our attempt and our look
            try:
                _place(staged, path)
                return
            except FileExistsError:
                holder = read_holder(out)
            if holder is None:
                continue
            if holder_alive(holder) is not False:
                raise _held(out, holder)
            log(f"taking over the lock of {out}: its holder, {describe(holder)}, is gone")
            # Two runs taking over the same stale lock in the same instant could both win;
            # it needs a killed run and two restarts within microseconds, so it is accepted.
            path.unlink(missing_ok=True)
        raise UserError(f"could not lock {out}: other runs keep taking it; run one at a time")
    finally:
        staged.unlink(missing_ok=True)


def _place(staged: Path, path: Path) -> None:
    """Create `path` with the staged content, or raise FileExistsError if it exists."""
    try:
        os.link(staged, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (some FUSE, SMB): exclusive create
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(staged.read_text(encoding="utf-8"))
