"""The output folder's lock: a run token on a lease judged on the observer's own clock, so that a
hard kill cannot strand it, a skewed clock cannot make it steal or wait forever, two runs cannot
share it (same host name, other process namespace; two takeovers in the same instant), and an
NFS retry cannot make a run refuse itself."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import threading
import time

import pytest

import selfalign.store.lock as lock
from selfalign.errors import UserError
from selfalign.store.layout import lock_path

ROUNDS = 100


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    (folder / ".selfalign").mkdir(parents=True)
    return folder


@pytest.fixture
def short_lease(monkeypatch):
    """A lease of a fraction of a second, so that watching one costs no time in tests."""
    monkeypatch.setattr(lock, "LEASE_S", 0.6)
    monkeypatch.setattr(lock, "RENEW_S", 0.05)
    monkeypatch.setattr(lock, "POLL_S", 0.02)
    monkeypatch.setattr(lock, "REFUSE_WATCH_S", 0.2)


def hold(out, **holder) -> None:
    lock_path(out).write_text(json.dumps(holder))


def take(out) -> list[str]:
    said: list[str] = []
    with lock.output_lock(out, said.append):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()
    return said


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def other_host(token: str, renewed: float, beat: int = 0) -> dict:
    return {"token": token, "host": "node-7", "pid": 4242, "machine": "node-7/b/pid:[1]",
            "since": renewed, "renewed": renewed, "beat": beat}


class Renewer:
    """Another host's live run: rewrites its lock every RENEW_S with its own (wrong) clock."""

    def __init__(self, out, clock_offset: float):
        self.out, self.offset, self.stop = out, clock_offset, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        beat = 0
        while not self.stop.wait(lock.RENEW_S):
            beat += 1
            hold(self.out, **other_host("live", time.time() + self.offset, beat))

    def __enter__(self):
        hold(self.out, **other_host("live", time.time() + self.offset))
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_a_container_sharing_the_host_name_is_not_judged_by_our_process_ids(out, short_lease):
    """Host networking: same host name, another process namespace, a pid that means nothing
    here. It renews its lease, so the lock is refused; before, a missing pid here was taken for
    a dead holder and two runs wrote one folder."""
    now = time.time()
    hold(out, token="theirs", host=socket.gethostname(), pid=2 ** 22 + 7,
         machine=f"{socket.gethostname()}/same-boot/pid:[4026532000]", since=now, renewed=now)
    renewed = threading.Timer(0.1, hold, (out,), {
        "token": "theirs", "host": socket.gethostname(), "pid": 2 ** 22 + 7, "beat": 1,
        "machine": f"{socket.gethostname()}/same-boot/pid:[4026532000]", "since": now,
        "renewed": now})
    renewed.start()
    with pytest.raises(UserError, match="being written by another run"):
        take(out)
    renewed.join()


def test_a_lapsed_lease_on_another_host_is_taken_over_saying_whose_and_since_when(out,
                                                                                  short_lease):
    since, renewed = time.time() - 3600, time.time() - 5
    hold(out, **{**other_host("old", renewed), "since": since})
    started = time.monotonic()
    said = take(out)
    assert time.monotonic() - started >= lock.LEASE_S  # watched for a whole lease first
    holder = (f"process 4242 on host node-7, started {lock._clock(since)}, last renewed "
              f"{lock._clock(renewed)}")
    assert said == [f"{out} is locked by {holder} on another host: watching whether it is "
                    f"renewed (up to 1s on this host's clock)",
                    f"taking over the lock of {out}: its holder, {holder}, is gone"]


def test_a_live_lease_on_another_host_is_refused(out, short_lease):
    with Renewer(out, clock_offset=0):
        with pytest.raises(UserError, match=r"being written by another run \(process 4242 on "
                                            r"host node-7"):
            take(out)
        with pytest.raises(UserError, match="being written by another run"):
            lock.refuse_if_locked(out)


@pytest.mark.parametrize("offset", [-600.0, 600.0])
def test_a_holder_whose_clock_is_minutes_off_is_judged_by_whether_it_renews(out, short_lease,
                                                                            offset):
    """Ten minutes behind (a live lock that looks lapsed by its times) is refused; ten minutes
    ahead, once dead (a lock whose times look fresh for ten minutes more), is taken over after
    one lease on this host's clock."""
    with Renewer(out, clock_offset=offset):
        with pytest.raises(UserError, match="being written by another run"):
            take(out)
    # The renewer stopped: the same lock, now dead, with its times still in the future (+600)
    # or far in the past (-600).
    started = time.monotonic()
    assert "is gone" in take(out)[-1]
    # One lease on this host's clock, not the ten minutes the holder's times claim; the upper
    # bound leaves a loaded machine room (a CI runner beside other work).
    assert lock.LEASE_S <= time.monotonic() - started < 60


def test_a_dead_process_of_this_very_machine_is_taken_over_at_once(out):
    now = time.time()
    hold(out, token="crashed", host=socket.gethostname(), pid=dead_pid(),
         machine=lock.this_machine(), since=now, renewed=now)
    started = time.monotonic()
    assert "is gone" in take(out)[0]
    assert time.monotonic() - started < lock.LEASE_S / 3  # not watched for a lease (90 s)


def test_an_nfs_retry_that_says_exists_for_our_own_link_is_ours(out, monkeypatch):
    real_link = os.link

    def link_then_exists(source, target):
        real_link(source, target)  # the first try made the link; its answer was lost
        raise FileExistsError(17, "File exists", str(target))

    monkeypatch.setattr(lock.os, "link", link_then_exists)
    assert take(out) == []


def test_the_lease_is_renewed_while_the_run_lives(out, monkeypatch):
    monkeypatch.setattr(lock, "RENEW_S", 0.05)
    with lock.output_lock(out, lambda line: None):
        first = json.loads(lock_path(out).read_text())
        time.sleep(0.5)
        later = json.loads(lock_path(out).read_text())
    assert later["token"] == first["token"] and later["since"] == first["since"]
    assert later["renewed"] > first["renewed"] and later["beat"] > first["beat"] == 0
    assert not lock_path(out).exists()


def test_a_run_that_lost_its_lock_stops_renewing_and_leaves_the_new_holders_lock(out,
                                                                                monkeypatch):
    monkeypatch.setattr(lock, "RENEW_S", 0.05)
    said: list[str] = []
    theirs = other_host("theirs", time.time())
    with lock.output_lock(out, said.append):
        hold(out, **theirs)  # taken over while this run was stalled
        time.sleep(0.4)  # several renewals' worth
        assert json.loads(lock_path(out).read_text()) == theirs
    assert json.loads(lock_path(out).read_text()) == theirs  # its exit deleted nothing
    assert said == [f"warning: the lock of {out} is no longer this run's (now: "
                    f"{lock.describe(theirs)}); another run may be writing it"]


# ---------------------------------------------------------------- two takeovers at once


def _contender(out, start, done, results):
    """Each round: wait for the lapsed lock, try to take it, say whether it won."""
    for n in range(ROUNDS):
        start.wait()
        mine = {"token": f"{os.getpid()}-{n}", "host": socket.gethostname(), "pid": os.getpid(),
                "machine": lock.this_machine(), "since": time.time(), "renewed": time.time()}
        try:
            lock.acquire(out, mine, lambda line: None)
            results.put((n, mine["token"]))
        except UserError:
            results.put((n, None))
        done.wait()


def test_two_runs_taking_over_one_lapsed_lock_at_once_never_both_win(out):
    context = multiprocessing.get_context("fork")  # no re-import: a round costs milliseconds
    start, done, results = context.Barrier(3), context.Barrier(3), context.Queue()
    contenders = [context.Process(target=_contender, args=(out, start, done, results))
                  for _ in range(2)]
    for process in contenders:
        process.start()
    pid = dead_pid()
    winners = []
    try:
        for n in range(ROUNDS):
            hold(out, token=f"lapsed-{n}", host=socket.gethostname(), pid=pid,
                 machine=lock.this_machine(), since=time.time(), renewed=time.time())
            start.wait(timeout=30)
            answers = [results.get(timeout=30) for _ in range(2)]
            won = [token for _, token in answers if token is not None]
            winners.append(len(won))
            assert json.loads(lock_path(out).read_text())["token"] == (won[0] if won else None)
            done.wait(timeout=30)
    finally:
        for process in contenders:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert winners == [1] * ROUNDS
    assert sorted(p.name for p in lock_path(out).parent.iterdir()) == ["lock"]
