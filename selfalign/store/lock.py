"""One run at a time per output folder: `.selfalign/lock`, held on a lease.

Two runs writing one folder would each record shards the other overwrites. The lock names its
holder by a random token (plus host, process and when), and the holder renews it while the
run lives. Another run may take it over only when
- its lease has lapsed (not renewed for `LEASE_S`): the holder is gone, on whatever host, so a
  requeued `--resume` on another node never waits for someone to delete the file; or
- the holder is a process of this very machine and process namespace that no longer exists.
  Host names alone do not say that: containers with host networking share one host name but
  not their process ids, so the machine is told by host name, boot id and process namespace.

The lock is made with a hard link of a finished file, atomic on local and network file systems
alike, so it is never seen half-written (where hard links are not supported, an exclusive create
does the same). On NFS a retried `link` can answer "exists" for a link that in fact was made:
the token in the file then says it is ours.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from selfalign.atomic import write_text
from selfalign.errors import UserError
from selfalign.store.layout import LOCK, lock_path

LEASE_S = 90.0  # a lock not renewed for this long is free to take
RENEW_S = 15.0  # how often a live run renews it


def this_machine() -> str:
    """Host, boot and process namespace: two processes with the same value see the same pids."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(source) if source.endswith("/pid")
                         else Path(source).read_text().strip())
        except OSError:
            parts.append("?")
    return "/".join(parts)


def read_holder(out: Path) -> dict | None:
    try:
        return json.loads(lock_path(out).read_text(encoding="utf-8"))
    except OSError:  # none, or a folder we cannot read: the output folder checks say so
        return None
    except ValueError:  # not ours to read: treated as held, and the message says how to clear it
        return {"host": "?", "pid": None}


def holder_alive(holder: dict, now: float | None = None) -> bool | None:
    """Whether the holder still runs: False when its lease lapsed or its process is gone (on
    this machine); None when nothing here can tell (its lease still runs elsewhere)."""
    renewed = holder.get("renewed")
    if isinstance(renewed, (int, float)) and (now or time.time()) - renewed > LEASE_S:
        return False
    same_machine = holder.get("machine") == this_machine() or (
        "machine" not in holder and holder.get("host") == socket.gethostname())
    if not same_machine or not isinstance(holder.get("pid"), int):
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
    started = f", started {_clock(since)}" if isinstance(since, (int, float)) else ""
    renewed = holder.get("renewed")
    last = f", last renewed {_clock(renewed)}" if isinstance(renewed, (int, float)) else ""
    return f"process {holder.get('pid')} on host {holder.get('host')}{started}{last}"


def _clock(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _held(out: Path, holder: dict) -> UserError:
    if holder_alive(holder):
        return UserError(f"{out} is being written by another run ({describe(holder)}); wait for "
                         f"it to finish, stop it, or choose another --out. (If that process is "
                         f"not a selfalign run, its id was reused: delete {lock_path(out)})")
    lease = (f"; if that run is gone its lease lapses {LEASE_S:.0f}s after its last renewal "
             f"and the next run takes the lock over by itself") if "renewed" in holder else ""
    return UserError(f"{out} is locked by {describe(holder)}, which cannot be checked from this "
                     f"host ({socket.gethostname()}){lease}. If that run is gone, delete "
                     f"{lock_path(out)} and run again")


def refuse_if_locked(out: Path) -> None:
    """Before any other check: a folder another run is writing is refused, naming the holder."""
    holder = read_holder(out)
    if holder is not None and holder_alive(holder) is not False:
        raise _held(out, holder)


@contextmanager
def output_lock(out: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the folder's lock for the run, renewing its lease; released at exit, on errors too."""
    now = time.time()
    mine = {"token": secrets.token_hex(8), "host": socket.gethostname(), "pid": os.getpid(),
            "machine": this_machine(), "since": now, "renewed": now}
    _acquire(out, mine, log)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(out, mine, stop, log), daemon=True,
                               name="selfalign-lock-lease")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        if _token(read_holder(out)) == mine["token"]:
            lock_path(out).unlink(missing_ok=True)


def _token(holder: dict | None) -> str | None:
    return holder.get("token") if holder else None


def _renew(out: Path, mine: dict, stop: threading.Event, log) -> None:
    while not stop.wait(RENEW_S):
        holder = read_holder(out)
        if _token(holder) != mine["token"]:
            log(f"warning: the lock of {out} is no longer this run's (now: "
                f"{describe(holder) if holder else 'none'}); another run may be writing it")
            return
        try:
            write_text(lock_path(out), json.dumps({**mine, "renewed": time.time()}))
        except OSError as err:  # a full disk must not kill the run from here; the lease says
            log(f"warning: could not renew the lock of {out}: {err}")


def _acquire(out: Path, mine: dict, log: Callable[[str], None]) -> None:
    path = lock_path(out)
    staged = path.with_name(f".{LOCK}.{mine['token']}.tmp")
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
            if _token(holder) == mine["token"]:
                return  # a retried link on NFS said "exists" for our own link
            if holder_alive(holder) is not False:
                raise _held(out, holder)
            log(f"taking over the lock of {out}: its holder, {describe(holder)}, is gone")
            # Two runs taking over the same stale lock in the same instant could both win;
            # it needs a lost run and two restarts within microseconds, so it is accepted.
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
