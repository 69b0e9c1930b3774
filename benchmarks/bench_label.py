"""The labelling app at the size teams label (issue 24): a synthetic run of 1,000,000 pairs.

Measured, each on the real server (`selfalign label serve`, its own process):
- start: seconds from launch to the first answered request, the first time (the items drawn
  into the database) and again (what every later start costs);
- next item: latency of `GET /api/next` at the 50th and 95th percentile with 20 labellers at
  once over real HTTP, paced (each reads for about 2 s before answering, as people do) and flat
  out (scripts answering as fast as the server lets them);
- memory: the server's peak resident set at its first start (drawing the items) and its
  resident set (now and its peak) after the labelling, on a later start;
- export: `selfalign label export` of 100,000 labels, wall seconds.

    .venv/bin/python benchmarks/bench_label.py --pairs 1000000 --labels 100000

Wall times on a shared machine depend on the neighbours: the figures include the CPU seconds
each step used, and the load average around them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic run builder the tests use


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--labellers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50, help="labels per labeller")
    parser.add_argument("--labels", type=int, default=100_000, help="labels to export")
    parser.add_argument("--limit", type=int, default=100_000,
                        help="items the task draws from the run (teams label a sample)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a folder an earlier run of this benchmark made: its synthetic run "
                             "is used again (its labels are removed first)")
    parser.add_argument("--think", type=float, default=2.0,
                        help="seconds a labeller reads before answering, in the paced loop")
    args = parser.parse_args()

    from label_helpers import free_port, start_server, synthetic_run, write_tasks

    from selfalign.label.project import open_project

    root = args.reuse or Path(tempfile.mkdtemp(prefix="bench-label-"))
    started = time.perf_counter()
    if args.reuse and (root / "run" / "manifest.json").exists():
        run = root / "run"
        shutil.rmtree(run / "labels", ignore_errors=True)
        shutil.rmtree(root / "export", ignore_errors=True)
    else:
        run = synthetic_run(root / "run", args.pairs, splits=("train", "test"),
                            text=lambda i, which: f"{which} {i}: " + "words of a reply " * 20)
    figures = {"pairs": args.pairs, "synthetic_run_s": round(time.perf_counter() - started, 1),
               "load_average_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    write_tasks(run, f"    limit: {args.limit}\n    overlap: 0.1\n    gold: 10\n")

    port = free_port()
    figures["first_start_s"], server = timed_start(start_server, run, port)
    figures["first_start_cpu_s"] = cpu_seconds(server.pid)
    figures["first_start_peak_rss_mib"] = memory_mib(server.pid)[1]
    stop(server)
    figures["start_s"], server = timed_start(start_server, run, port)
    figures["start_cpu_s"] = cpu_seconds(server.pid)
    project = open_project(run, sync=False)
    figures["items"] = project.db.conn.execute("SELECT count(*) FROM items").fetchone()[0]
    owner = project.db.add_labeller("owner", owner=True)
    tokens = [project.db.add_labeller(f"labeller-{i}") for i in range(args.labellers)]
    label_gold(port, owner)
    for name, think in (("paced", args.think), ("flat_out", 0.0)):
        latencies = asyncio.run(label_loop(port, tokens, args.rounds, think))
        figures[f"next_{name}_p50_ms"] = round(statistics.median(latencies) * 1000, 1)
        figures[f"next_{name}_p95_ms"] = round(statistics.quantiles(latencies, n=20)[18] * 1000, 1)
        figures[f"next_{name}_requests"] = len(latencies)
    figures["server_rss_mib"], figures["server_peak_rss_mib"] = memory_mib(server.pid)
    stop(server)

    add_labels(project.db.path, args.labels)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "selfalign.cli", "label", "export", str(run), "--out",
                    str(root / "export")], check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                   stdout=subprocess.DEVNULL)
    figures["export_labels"] = project.db.conn.execute("SELECT count(*) FROM labels").fetchone()[0]
    figures["export_s"] = round(time.perf_counter() - started, 2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["export_cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime
                                    - before.ru_stime, 2)
    figures["load_average_at_end"] = os.getloadavg()[0]
    figures["database_mib"] = round(project.db.path.stat().st_size / 2**20, 1)
    print(json.dumps(figures))


def timed_start(start_server, run: Path, port: int):
    started = time.perf_counter()
    server = start_server(run, port, timeout=900)
    return round(time.perf_counter() - started, 2), server


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far: on a shared machine, wall time says more about the
    neighbours than about the server."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def stop(server) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def label_gold(port: int, token: str) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(10):
            item = client.get("/api/next").json()["item"]
            client.post("/api/labels", json={"item": item, "answer": "a"})


async def label_loop(port: int, tokens: list[str], rounds: int, think: float) -> list[float]:
    """Each labeller: next, read for `think` seconds (± half, seeded), answer; `think` 0 is
    twenty scripts answering as fast as the server lets them."""
    import random
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(tokens))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=30) as client:
        async def labeller(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            pace = random.Random(token)
            if think:  # people do not all start at the same instant
                await asyncio.sleep(think * pace.random())
            for n in range(rounds):
                started = time.perf_counter()
                got = await client.get("/api/next", headers=headers)
                latencies.append(time.perf_counter() - started)
                if think:
                    await asyncio.sleep(think * pace.uniform(0.5, 1.5))
                answer = ("a", "b", "tie", "skip")[n % 4]
                await client.post("/api/labels", json={"item": got.json()["item"],
                                                       "answer": answer}, headers=headers)
        await asyncio.gather(*(labeller(t) for t in tokens))
    return latencies


def memory_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status
           if line.startswith(("VmRSS", "VmHWM"))}
    return round(kib["VmRSS"] / 1024, 1), round(kib["VmHWM"] / 1024, 1)


def add_labels(path: Path, total: int) -> None:
    """Labels up to `total`, written straight into the database (as `label import` would):
    the export's cost depends on how many labels there are, not on how they were made."""
    conn = sqlite3.connect(path)
    have = conn.execute("SELECT count(*) FROM labels").fetchone()[0]
    labellers = [r[0] for r in conn.execute("SELECT id FROM labellers")]
    items = [r[0] for r in conn.execute(
        "SELECT id FROM items WHERE id NOT IN (SELECT item FROM labels) LIMIT ?",
        (total - have,))]
    conn.executemany("INSERT INTO labels (item, labeller, answer, source, created) "
                     "VALUES (?, ?, ?, 'bench', ?)",
                     ((item, labellers[n % len(labellers)],
                       json.dumps({"preferred": n % 2}), time.time())
                      for n, item in enumerate(items)))
    conn.commit()
    conn.close()


if __name__ == "__main__":
    main()
