"""One run at a time per output folder: `.selfalign/lock`, held on a lease.

Two runs writing one folder would each record shards the other overwrites. The lock names its
holder by a random token (plus host, process and when), and the holder rewrites it every
`RENEW_S` while the run lives, counting its renewals. Another run may take it over only when
- the holder is a process of this very machine and process namespace that no longer exists
  (taken over at once). Host names alone do not say that: containers with host networking share
  one host name but not their process ids, so the machine is told by host name, boot id and
  process namespace; or
- the lease lapsed: the observer watched the file for `LEASE_S` on its own monotonic clock and
  it did not change. Times written by another host are never compared with this host's clock
  (they are in the messages only), so hosts whose clocks differ by minutes neither take a live
  lock nor wait forever on a dead one. A requeued `--resume` on another node therefore waits up
  to `LEASE_S` before it takes over a lock whose holder died, and it never needs the file deleted.

The lock is made with a hard link of a finished file, atomic on local and network file systems
alike, so it is never seen half-written (where hard links are not supported, an exclusive create
does the same). On NFS a retried `link` can answer "exists" for a link that in fact was made:
the token in the file then says it is ours.

A takeover never deletes the lock (two runs deleting and re-creating it in the same instant
could both win). The right to replace one lapsed holder is a file named after that holder's
exact content, made with the same exclusive link: of the runs that judged it lapsed, one makes
it, checks that the lock still holds that content, and puts its own in place with a rename.

filelock's `SoftFileLease` (3.30+) also watches a lease on the observer's clock, but it is not
used: its marker records a pid and a host name only, so the messages here (which process on
which host, started and renewed when) and `selfalign verify`'s reading of the holder would need
a second file; its host identity has no boot id; and its takeover swaps names with Linux's
renameat2, which network file systems do not offer, where this folder often lies.
"""

from __future__ import annotations

import hashlib
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

LEASE_S = 90.0  # a lock seen unchanged for this long, on the observer's clock, is free to take
RENEW_S = 5.0  # how often a live run renews it
POLL_S = 0.5  # how often an observer looks at a lock it is watching
TAKEOVER_WAIT_S = 5.0  # how long a run that lost a takeover waits for the winner's lock
REFUSE_WATCH_S = 2 * RENEW_S + 1  # before any work: long enough to see a live run renew

_first_seen: dict[tuple[str, str], float] = {}  # (lock, holder's content) → monotonic time


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
    return _read(lock_path(out))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:  # none, or a folder we cannot read: the output folder checks say so
        return None
    except ValueError:  # not ours to read: treated as held, and the message says how to clear it
        return {"host": "?", "pid": None}


def holder_alive(holder: dict) -> bool | None:
    """Whether the holder still runs, as far as one look tells: its process on this machine
    exists or not; None for another machine's (only watching its lease can tell)."""
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


def _held(out: Path, holder: dict, renewing: bool = False) -> UserError:
    if holder_alive(holder) or renewing:
        return UserError(f"{out} is being written by another run ({describe(holder)}); wait for "
                         f"it to finish, stop it, or choose another --out. (If that process is "
                         f"not a selfalign run, its id was reused: delete {lock_path(out)})")
    lease = "" if "token" not in holder else (
        f"; if that run is gone its lease lapses once the lock stays unchanged for "
        f"{LEASE_S:.0f}s, and the next run takes it over by itself")
    return UserError(f"{out} is locked by {describe(holder)}, which cannot be checked from this "
                     f"host ({socket.gethostname()}){lease}. If that run is gone, delete "
                     f"{lock_path(out)} and run again")


# ---------------------------------------------------------------- the lease, on our own clock


def _content(holder: dict) -> str:
    return json.dumps(holder, sort_keys=True)


def watch_lease(out: Path, holder: dict, limit: float = LEASE_S) -> dict | None:
    """Watch another machine's lock until it changes or lapses, at most `limit` seconds now:
    the lock as it changed (a renewal, a new holder, or None once it is gone), or `holder`
    itself when it lapsed. Still running after `limit` (under `LEASE_S`): UserError. A watch
    begun earlier in this process (the check before the run) counts towards the lease."""
    key = (str(lock_path(out)), _content(holder))
    start = _first_seen.setdefault(key, time.monotonic())
    stop = time.monotonic() + limit
    while time.monotonic() - start < LEASE_S:
        if time.monotonic() >= stop:
            raise _held(out, holder)
        time.sleep(POLL_S)
        now = read_holder(out)
        if now != holder:
            return now
    return holder


def refuse_if_locked(out: Path) -> None:
    """Before any other check: a folder another run is writing is refused, naming the holder.
    Another machine's lock is watched a little while, long enough to see a live run renew it;
    whether it lapsed is decided when the run takes the lock."""
    holder = read_holder(out)
    if holder is None:
        return
    alive = holder_alive(holder)
    if alive or (alive is None and "token" not in holder):
        raise _held(out, holder)
    if alive is None:
        try:
            now = watch_lease(out, holder, limit=REFUSE_WATCH_S)
        except UserError:
            return  # not renewed yet: the lock's own watch goes on from here
        if now is not None and _token(now) == _token(holder):
            raise _held(out, now, renewing=True)


# ---------------------------------------------------------------- holding the lock


@contextmanager
def output_lock(out: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the folder's lock for the run, renewing its lease; released at exit, on errors too."""
    now = time.time()
    mine = {"token": secrets.token_hex(8), "host": socket.gethostname(), "pid": os.getpid(),
            "machine": this_machine(), "since": now, "renewed": now, "beat": 0}
    acquire(out, mine, log)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(out, mine, stop, log), daemon=True,
                               name="selfalign-lock-lease")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        if _token(read_holder(out)) == mine["token"]:  # never another run's lock
            lock_path(out).unlink(missing_ok=True)


def _token(holder: dict | None) -> str | None:
    return holder.get("token") if holder else None


def _renew(out: Path, mine: dict, stop: threading.Event, log) -> None:
    beat = mine.get("beat", 0)
    while not stop.wait(RENEW_S):
        holder = read_holder(out)
        if _token(holder) != mine["token"]:  # taken over: renewing would overwrite its lock
            log(f"warning: the lock of {out} is no longer this run's (now: "
                f"{describe(holder) if holder else 'none'}); another run may be writing it")
            return
        beat += 1  # the content changes every time, whatever the clocks say
        try:
            write_text(lock_path(out), json.dumps({**mine, "renewed": time.time(), "beat": beat}))
        except OSError as err:  # a full disk must not kill the run from here; the lease says
            log(f"warning: could not renew the lock of {out}: {err}")


def acquire(out: Path, mine: dict, log: Callable[[str], None]) -> None:
    """Place `mine` as the folder's lock, taking over a holder that is gone, or UserError."""
    path = lock_path(out)
    staged = path.with_name(f".{LOCK}.{mine['token']}.tmp")
    staged.write_text(json.dumps(mine), encoding="utf-8")
    try:
        for _ in range(5):  # the holder may vanish or change between our attempt and our look
            try:
                _place(staged, path)
                return
            except FileExistsError:
                holder = read_holder(out)
            if holder is None:
                continue
            if _token(holder) == mine["token"]:
                return  # a retried link on NFS said "exists" for our own link
            if not _gone(out, holder, log):
                continue  # it changed while we watched: look again
            log(f"taking over the lock of {out}: its holder, {describe(holder)}, is gone")
            if _take_over(out, holder, staged, mine):
                return
        raise UserError(f"could not lock {out}: other runs keep taking it; run one at a time")
    finally:
        staged.unlink(missing_ok=True)


def _gone(out: Path, holder: dict, log: Callable[[str], None]) -> bool:
    """True when the holder is gone; False when the lock changed meanwhile; UserError when the
    holder lives (or cannot be judged: a file that is not ours)."""
    alive = holder_alive(holder)
    if alive or (alive is None and "token" not in holder):
        raise _held(out, holder)
    if alive is False:
        return True
    log(f"{out} is locked by {describe(holder)} on another host: watching whether it is renewed "
        f"(up to {LEASE_S:.0f}s on this host's clock)")
    now = watch_lease(out, holder)
    if now is not None and now is not holder and _token(now) == _token(holder):
        raise _held(out, now, renewing=True)
    return now is holder


def _take_over(out: Path, holder: dict, staged: Path, mine: dict) -> bool:
    """Replace the lapsed `holder` with ours; False if the lock changed before we could."""
    path = lock_path(out)
    lapsed = hashlib.sha256(_content(holder).encode()).hexdigest()[:16]
    right = path.with_name(f"{LOCK}.takeover.{lapsed}")
    try:
        _place(staged, right)
    except FileExistsError:
        if _token(_read(right)) != mine["token"]:  # another run has the right: wait for its lock
            return _lost_takeover(out, holder, right)
    try:
        if read_holder(out) != holder:  # renewed or replaced since we judged it
            return False
        replacement = staged.with_suffix(".take")
        replacement.write_text(json.dumps(mine), encoding="utf-8")
        os.replace(replacement, path)
        return True
    finally:
        right.unlink(missing_ok=True)


def _lost_takeover(out: Path, holder: dict, right: Path) -> bool:
    deadline = time.monotonic() + TAKEOVER_WAIT_S
    while time.monotonic() < deadline:
        now = read_holder(out)
        if now != holder:
            if now is None:
                return False
            raise _held(out, now, renewing=True)
        time.sleep(POLL_S / 10)
    raise UserError(f"the lock of {out} is being taken over by another run that has not finished "
                    f"({describe(_read(right) or {})}); if that run is gone, delete {right} and "
                    f"{lock_path(out)} and run again")


def _place(staged: Path, path: Path) -> None:
    """Create `path` with the staged content, or raise FileExistsError if it exists."""
    try:
        os.link(staged, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (some FUSE, SMB): exclusive create
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(staged.read_text(encoding="utf-8"))
