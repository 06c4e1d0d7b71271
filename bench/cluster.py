"""Benchmark: the refunds robot on the cluster, 1, 2 and 4 worker processes on this machine.

    python bench/cluster.py [--refunds 600] [--seed 11] [--workers 1,2,4] [--pages 2]
                            [--latency-ms 150] [--postgres URL] [--redis URL]

One shop is seeded and copied fresh for every measurement; each measurement starts N
`robots worker --pages P` processes and one coordinator (`robots run refunds --cluster`)
against a fresh PostgreSQL database and an emptied Redis database, and times the
coordinator from its start to its end (the workers are started just before it: their
start-up, browser and login are in the figure). Printed:
decisions/min, the ratio to one worker, the CPU of the whole process tree per decision and
the load average; once with ``--latency-ms`` added to every answer of the shop (a back
office far away) and once without, where two cores bound it. A figure counts only when the
approvals equal the ground truth, each once (the shop's audit log).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from common import Shop  # noqa: E402
from refunds import PASSWORD, Bench, approvals  # noqa: E402


def database(admin_url: str) -> str:
    import sqlalchemy

    name = f"robots_bench_{secrets.token_hex(4)}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop(admin_url: str, url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    engine.dispose()


def workspace(work: Path, shop: Shop, scenario: Path, ledger: str, broker: str) -> Path:
    work.mkdir(parents=True)
    creds = work / "credentials.toml"
    creds.write_text(f'[demo-shop]\nusername = "robot"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    (work / "robots.toml").write_text(
        f"""
[paths]
credentials_file = "{creds}"

[cluster]
ledger = "{ledger}"
broker = "{broker}"

[[targets]]
name = "bench"
robot = "refunds"
scenario = "{scenario}"
base_url = "{shop.url}"
""",
        encoding="utf-8",
    )
    return work


def robots(*args: str) -> list[str]:
    return [sys.executable, "-m", "robots", *args]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(bench: Bench, n: int, pages: int, latency_ms: float, pg: str, redis_url: str) -> float:
    import redis

    bench.runs += 1
    shop = Shop(bench.seeded, bench.tmp / f"shop{bench.runs}", latency_ms=latency_ms)
    ledger = database(pg)
    redis.Redis.from_url(redis_url).flushdb()
    ws = workspace(bench.tmp / f"work{bench.runs}", shop, bench.scenario, ledger, redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTS_")}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        cpu0 = children_cpu()
        for i in range(n):
            with (ws / f"worker-{i}.out").open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        robots("worker", "--pages", str(pages), "-w", str(ws)),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
        # timed from here: a worker's start (Celery, its browser, its login with its first
        # item) is part of the figure, as it is when a scheduled run starts its workers
        start = time.perf_counter()
        done = subprocess.run(
            robots("run", "refunds", "--cluster", "-w", str(ws)),
            capture_output=True,
            text=True,
            env=env,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{n} workers: the coordinator failed:\n{done.stderr[-3000:]}")
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=120)
        cpu = children_cpu() - cpu0  # workers, their Chromium and the coordinator
        audit = approvals(shop)
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shop.stop()
        drop(pg, ledger)
    twice = [rid for rid, k in audit.items() if k > 1]
    if set(audit) != bench.expected or twice:
        raise SystemExit(
            f"{n} workers: approvals differ from the ground truth by "
            f"{len(set(audit) ^ bench.expected)}, approved twice: {twice[:5]}"
        )
    per_min = bench.to_decide / seconds * 60
    print(
        f"  {n} worker(s) x {pages} pages  {bench.to_decide} decisions in {seconds:6.1f} s = "
        f"{per_min:6.0f}/min  CPU {cpu / bench.to_decide:5.3f} s a decision (all processes but "
        f"the shop's)  load {os.getloadavg()[0]:4.2f}"
    )
    return per_min


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--refunds", type=int, default=600)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--pages", type=int, default=2)
    ap.add_argument("--latency-ms", type=float, default=150)
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "ROBOTS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument(
        "--redis", default=os.environ.get("ROBOTS_TEST_REDIS", "redis://127.0.0.1:6379/15")
    )
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    with Bench(args.refunds, args.seed) as bench:
        for latency in (args.latency_ms, 0.0) if args.latency_ms else (0.0,):
            where = f"{latency:.0f} ms added to every answer" if latency else "local shop"
            print(f"\n{where}: each figure's approvals checked against the ground truth")
            figs = {
                n: measure(bench, n, args.pages, latency, args.postgres, args.redis) for n in counts
            }
            base = figs[counts[0]]
            print("  ratios to one worker (decisions/min)")
            for n in counts[1:]:
                print(f"    {n} workers / {counts[0]}: {figs[n] / base:5.2f}x")


if __name__ == "__main__":
    main()
