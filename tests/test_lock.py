"""The output folder's lock: a run token on a lease, so that a hard kill cannot strand it, two
runs cannot share it (same host name, other process namespace), and an NFS retry cannot make a
run refuse itself."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

import selfalign.store.lock as lock
from selfalign.errors import UserError
from selfalign.store.layout import lock_path


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    (folder / ".selfalign").mkdir(parents=True)
    return folder


def hold(out, **holder) -> None:
    lock_path(out).write_text(json.dumps(holder))


def take(out) -> list[str]:
    said: list[str] = []
    with lock.output_lock(out, said.append):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()
    return said


def test_a_container_sharing_the_host_name_is_not_judged_by_our_process_ids(out):
    """Host networking: same host name, another process namespace, a pid that means nothing
    here. Its lease still runs, so the lock is refused; before, a missing pid here was taken for
    a dead holder and two runs wrote one folder."""
    now = time.time()
    hold(out, token="theirs", host=socket.gethostname(), pid=2 ** 22 + 7,
         machine=f"{socket.gethostname()}/same-boot/pid:[4026532000]", since=now, renewed=now)
    with pytest.raises(UserError, match="cannot be checked from this host"):
        take(out)
    with pytest.raises(UserError):
        lock.refuse_if_locked(out)


def test_a_lapsed_lease_on_another_host_is_taken_over_saying_whose_and_since_when(out):
    since = time.time() - 3600
    renewed = time.time() - lock.LEASE_S - 5
    hold(out, token="old", host="node-7", pid=4242, machine="node-7/b/pid:[1]", since=since,
         renewed=renewed)
    said = take(out)
    assert said == [f"taking over the lock of {out}: its holder, process 4242 on host node-7, "
                    f"started {lock._clock(since)}, last renewed {lock._clock(renewed)}, is gone"]


def test_a_live_lease_on_another_host_is_refused_and_says_when_it_lapses(out):
    now = time.time()
    hold(out, token="other", host="node-7", pid=4242, machine="node-7/b/pid:[1]", since=now,
         renewed=now)
    with pytest.raises(UserError, match=r"locked by process 4242 on host node-7.*its lease "
                                        r"lapses 90s after its last renewal"):
        take(out)


def test_a_dead_process_of_this_very_machine_is_taken_over_at_once(out):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    now = time.time()
    hold(out, token="crashed", host=socket.gethostname(), pid=gone.pid,
         machine=lock.this_machine(), since=now, renewed=now)
    assert "is gone" in take(out)[0]


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
    assert later["renewed"] > first["renewed"]
    assert not lock_path(out).exists()
