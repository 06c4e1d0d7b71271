"""The cluster end to end on real servers: `robots worker` processes (Celery on Redis, one
PostgreSQL ledger) working what `robots run refunds --cluster` sends them, against the
sandbox, through workers that are SIGKILLed, a coordinator that is SIGKILLed, and a daily
cap both workers race for. Every figure is checked against the shop's own audit log."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy
from conftest import (
    PASSWORD,
    REDIS,
    SCENARIO,
    Sandbox,
    Workspace,
    approvals,
    expected_approvals,
    reaped,
    robot_env,
    robots_cmd,
    write_workspace,
)
from report_checks import values

pytestmark = [pytest.mark.browser]

# short enough that a killed worker's item comes back within seconds in a test
FAST = "visibility_timeout_s = 8\nresend_after_s = 4\n"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The tests' Redis database, emptied before and after (its queues are the test's)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis answers at {REDIS} ({exc}): run the tests through `make test`")
    try:
        yield REDIS
    finally:
        client.flushdb()
        client.close()


def cluster_toml(ledger: str, broker: str, tuning: str = FAST) -> str:
    """robots.toml's [cluster] table for the test's PostgreSQL and Redis."""
    return f'\n[cluster]\nledger = "{ledger}"\nbroker = "{broker}"\n{tuning}'


def cluster_ws(
    root: Path,
    ws: Workspace,
    ledger: str,
    broker: str,
    *,
    tuning: str = FAST,
    scenario_text: str | None = None,
) -> Workspace:
    if scenario_text is None:  # the ground truth assumes a cap no run of this size reaches
        scenario_text = SCENARIO.read_text(encoding="utf-8").replace(
            "daily_auto_total = 20000", "daily_auto_total = 100000000"
        )
    extra = cluster_toml(ledger, broker, tuning)
    return Workspace(
        write_workspace(root, ws.sandbox.url, extra=extra, scenario_text=scenario_text),
        ws.sandbox,
    )


def start_worker(
    root: Path, n: int, *, pages: int = 2, robots: str = "refunds", **env: str
) -> subprocess.Popen[str]:
    with (root / f"worker-{n}.out").open("a", encoding="utf-8") as log:  # the child's own
        return subprocess.Popen(
            robots_cmd("worker", "--robots", robots, "--pages", str(pages), "-w", str(root)),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=robot_env(**env),
            start_new_session=True,  # its Chromium goes with it when the group is killed
        )


@contextlib.contextmanager
def running_workers(root: Path, **kwargs: Any) -> Iterator[list[subprocess.Popen[str]]]:
    """Two workers on the workspace, killed with their browsers at the end, whatever
    happened."""
    workers = [start_worker(root, n, **kwargs) for n in (1, 2)]
    try:
        yield workers
    finally:
        for proc in workers:
            kill_group(proc)


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def coordinator(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        robots_cmd("run", "refunds", "--cluster", "-w", str(ws.root), *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=robot_env(),
        start_new_session=True,
    )


def pg_rows(url: str, sql: str) -> list[tuple]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]
    finally:
        engine.dispose()


def coordinate(ws: Workspace) -> str:
    """A coordinator run to its end, which must be clean; its stderr."""
    run = coordinator(ws)
    with reaped(run):
        _out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    return err


def ledger_states(url: str) -> Counter[str]:
    return Counter(dict(pg_rows(url, "SELECT state, count(*) FROM work_items GROUP BY state")))


def acting_keys(url: str) -> set[str]:
    return {r[0] for r in pg_rows(url, "SELECT item_key FROM work_items WHERE state = 'acting'")}


def ledger_runs(url: str) -> list[tuple]:
    return pg_rows(url, "SELECT run_id, ended_at, summary FROM runs ORDER BY 1")


def wait_for_approvals(ws: Workspace, n: int, *, alive: list[subprocess.Popen[str]]) -> None:
    """Until the shop's audit log holds ``n`` approvals (or a process it needs has ended)."""
    while len(ws.sandbox.audit()) < n:
        for proc in alive:
            assert proc.poll() is None, f"{proc.args} ended early with {proc.returncode}"
        time.sleep(0.2)


def assert_the_ground_truth_once(ws: Workspace, ledger: str) -> None:
    approved = approvals(ws)
    assert max(approved.values()) == 1, [k for k, n in approved.items() if n > 1]
    assert set(approved) == expected_approvals(ws)
    states = ledger_states(ledger)
    assert not states["acting"] and not states["pending"], states


@pytest.mark.refunds(400)
def test_two_workers_approve_the_ground_truth_once(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    with running_workers(ws.root) as workers:
        err = coordinate(ws)
        for proc in workers:  # both did a share of the work
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            assert proc.wait(timeout=120) == 0, (ws.root / "worker-1.out").read_text()
    assert_the_ground_truth_once(ws, postgres_url)
    expected = len(expected_approvals(ws))
    assert f"done: {expected} approved" in err, err
    [(run_id, ended, _summary)] = ledger_runs(postgres_url)
    assert ended is not None
    report = ws.root / "reports" / f"refunds-{run_id}.xlsx"
    assert report.is_file(), err
    worker_logs = [(ws.root / f"worker-{n}.out").read_text() for n in (1, 2)]
    for text in worker_logs:
        assert "approved" in text, text[-2000:]


@pytest.mark.refunds(400)
def test_a_worker_killed_five_times_loses_nothing_and_doubles_nothing(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    # every approval lands, then its answer takes 0.6 s: a kill mostly finds items *acting*
    # (pressed, not yet recorded), the case a redelivery must settle without pressing again
    for rid in expected_approvals(ws):
        ws.sandbox.control(
            "faults", path_prefix=f"/refunds/{rid}/approve", count=1, after=True, delay_s=0.6
        )
    rng = random.Random(1604)
    steady = start_worker(ws.root, 1)
    victim = start_worker(ws.root, 2)
    caught_acting: set[str] = set()
    try:
        run = coordinator(ws)
        with reaped(run):
            seen = 0
            for _ in range(5):  # at random points: after a random number of approvals more
                seen += rng.randint(8, 40)
                wait_for_approvals(ws, seen, alive=[run, steady])
                caught_acting |= acting_keys(postgres_url)
                kill_group(victim)
                victim = start_worker(ws.root, 2)
            _out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    finally:
        kill_group(victim)
        kill_group(steady)
    assert caught_acting, "no kill found an item acting: the test did not test redelivery"
    assert_the_ground_truth_once(ws, postgres_url)
    settled = pg_rows(
        postgres_url,
        "SELECT count(*) FROM work_items WHERE details::text LIKE '%%settled_on_resume%%'",
    )
    [(run_id, _ended, _summary)] = ledger_runs(postgres_url)
    book = openpyxl.load_workbook(ws.root / "reports" / f"refunds-{run_id}.xlsx")
    approved = values(book["已同意"])
    assert len(approved) == len(expected_approvals(ws)), settled
    for row in approved:  # settled items too: the row each had when it was decided
        assert row["订单编号"] and row["买家"] and row["退款金额"], (row, settled)
    assert (ws.root / "worker-2.out").read_text().count("takes refunds from") >= 6  # six starts


@pytest.mark.refunds(300)
def test_a_killed_coordinator_leaves_an_interrupted_run_the_next_one_resumes(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    with running_workers(ws.root):
        first = coordinator(ws)
        with reaped(first):
            wait_for_approvals(ws, 30, alive=[first])
            kill_group(first)
        shown = subprocess.run(
            robots_cmd("runs", "-w", str(ws.root)),
            capture_output=True,
            text=True,
            timeout=120,
            env=robot_env(),
        )
        assert "interrupted" in shown.stdout, shown.stdout
        coordinate(ws)
    assert_the_ground_truth_once(ws, postgres_url)
    runs = ledger_runs(postgres_url)
    assert len(runs) == 2 and runs[0][1] is None and runs[1][1] is not None, runs


@pytest.mark.refunds(300)
def test_the_daily_cap_holds_with_two_workers_racing(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    cap = 2500
    text = SCENARIO.read_text(encoding="utf-8").replace(
        "daily_auto_total = 20000", f"daily_auto_total = {cap}"
    )
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url, scenario_text=text)
    with running_workers(ws.root, pages=3):
        coordinate(ws)
    audit = ws.sandbox.audit()
    paid = [r for r in audit if r["action"] != "agree_return" and r["actor"] == "robot"]
    assert max(approvals(ws).values()) == 1
    assert 0 < sum(float(r["amount"]) for r in paid) <= cap
    truth = ws.sandbox.truth()
    paying = {rid for rid, t in truth.items() if t["action"] == "agree_refund"}
    assert len({r["refund_id"] for r in paid}) < len(paying), "the cap never bound"
    assert "DAILY_CAP_REACHED" in str(ledger_reasons(postgres_url))


def ledger_reasons(url: str) -> Counter[str]:
    rows = pg_rows(url, "SELECT reason_code, count(*) FROM work_items GROUP BY 1")
    return Counter({str(k): n for k, n in rows})


def test_cluster_mistakes_are_one_clear_line(tmp_path: Path, postgres_url: str) -> None:
    from conftest import dead_port

    root = write_workspace(tmp_path / "ws", "http://127.0.0.1:9/")

    def robots(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            robots_cmd(*args, "-w", str(root)),
            capture_output=True,
            text=True,
            timeout=120,
            env=robot_env(**env),
        )

    no_cluster = robots("run", "refunds", "--cluster")
    assert no_cluster.returncode == 2, no_cluster.stderr
    assert "cluster.broker" in no_cluster.stderr.splitlines()[0], no_cluster.stderr
    dry = robots("run", "refunds", "--cluster", "--dry-run")
    assert dry.returncode == 2 and "--cluster" in dry.stderr.splitlines()[0], dry.stderr
    dead = f"redis://:Hush-9917@127.0.0.1:{dead_port()}/0"
    for args in (("run", "refunds", "--cluster"), ("worker",)):
        done = robots(*args, ROBOTS_BROKER=dead, ROBOTS_LEDGER=postgres_url)
        assert done.returncode == 69, done.stderr
        first = done.stderr.strip().splitlines()[0]
        assert first.startswith("BrokerUnavailable: the broker at redis://:***@"), done.stderr
        assert "Hush-9917" not in done.stderr
    worker_alone = robots("worker")
    assert worker_alone.returncode == 2, worker_alone.stderr
    assert "cluster" in worker_alone.stderr.splitlines()[0]


def test_a_page_scan_through_two_workers_finds_the_ground_truth(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """The crawl runs in the coordinator; each product list's pages go to the workers as it
    is crawled; the findings in the shared ledger meet the same ground truth as one machine."""
    import json

    from conftest import start_sandbox, stop_sandbox, write_pagescan_workspace
    from test_pagescan_robot import check_against_truth

    sb = start_sandbox(tmp_path / "shop", refunds=1, products=320, seed=5)
    workers: list[subprocess.Popen[str]] = []
    try:
        root = write_pagescan_workspace(tmp_path / "ws", sb.url, sb.data / "price-list.xlsx")
        with (root / "robots.toml").open("a", encoding="utf-8") as toml:
            toml.write(cluster_toml(postgres_url, redis_url))
        workers += [start_worker(root, n, robots="pagescan") for n in (1, 2)]
        done = subprocess.run(
            robots_cmd("run", "pagescan", "--cluster", "-w", str(root)),
            capture_output=True,
            text=True,
            timeout=900,
            env=robot_env(),
        )
        assert done.returncode == 0, done.stderr
        assert "complete: 320 pages read" in done.stderr, done.stderr
        rows = pg_rows(
            postgres_url, "SELECT state, details FROM work_items WHERE robot = 'pagescan'"
        )
        items = [{"state": r[0], "details": json.dumps(r[1])} for r in rows]
        assert len(items) == 320 and {i["state"] for i in items} == {"done"}
        check_against_truth(sb, items)  # type: ignore[arg-type]
        for n in (1, 2):  # both workers read pages
            assert "pages_read" in (root / f"worker-{n}.out").read_text()
        assert list((root / "reports").glob("pagescan-*.xlsx"))
    finally:
        for proc in workers:
            kill_group(proc)
        stop_sandbox(sb)


@pytest.mark.parcels(200)
@pytest.mark.refunds(5)
def test_returns_through_a_worker_at_the_terminal_link_each_parcel_once(
    tmp_path: Path, sandbox: Sandbox, display: str, postgres_url: str, redis_url: str
) -> None:
    """The run exports the parcel list from the terminal; one worker on the terminal's
    display (two pages for the back-office searches) links them; it is SIGKILLed once
    mid-run and started again. Links meet the one-machine goals, none is made twice."""
    from conftest import start_terminal
    from test_returns_robot import links, truth
    from test_returns_robot import workspace as returns_workspace

    extra = cluster_toml(postgres_url, redis_url)
    terminal = start_terminal(sandbox, display, tmp_path / "exports")
    worker = None
    try:
        root = returns_workspace(tmp_path / "ws", sandbox.url, extra=extra)
        worker = start_worker(root, 1, robots="returns", DISPLAY=display)
        run = subprocess.Popen(
            robots_cmd("run", "returns", "--cluster", "-w", str(root)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=robot_env(DISPLAY=display),
            start_new_session=True,
        )
        with reaped(run):
            while len(links(sandbox)) < 40:
                assert run.poll() is None and worker.poll() is None, (
                    root / "worker-1.out"
                ).read_text()[-3000:]
                time.sleep(0.2)
            kill_group(worker)
            worker = start_worker(root, 1, robots="returns", DISPLAY=display)
            _out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    finally:
        if worker is not None:
            kill_group(worker)
        terminal.stop()
    made = links(sandbox)
    assert len({r["parcel_id"] for r in made}) == len(made)  # no parcel linked twice
    expected = truth(sandbox)
    right = [r for r in made if expected[r["parcel_id"]]["target"] == r["target"]]
    with_order = [t for t in expected.values() if t["order_id"]]
    precision, recall = len(right) / len(made), len(right) / len(with_order)
    assert precision >= 0.995 and recall >= 0.90, (precision, recall)
    states = Counter(
        dict(pg_rows(postgres_url, "SELECT state, count(*) FROM work_items GROUP BY state"))
    )
    assert not states["acting"] and not states["pending"], states
    assert sum(states.values()) == len(expected), states  # every parcel reached an end
    linked_rows = pg_rows(
        postgres_url, "SELECT count(*) FROM work_items WHERE strpos(details::text, 'linked_to') > 0"
    )
    assert linked_rows[0][0] == len(made)
    assert f"{len(made)} linked" in err, err
    log = (root / "worker-1.out").read_text()
    assert log.count("takes returns from") == 2 and "linked" in log
    assert list((root / "reports").glob("returns-*.xlsx"))


@pytest.mark.refunds(120)
def test_sigterm_lets_a_worker_finish_the_items_in_hand(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    """A drained worker (SIGTERM, as systemd stops it) takes no new item and finishes the
    ones it holds, pressed and waiting for the shop's answer; another worker does the rest."""
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    for rid in expected_approvals(ws):  # each approval lands, then its answer takes 3 s
        ws.sandbox.control(
            "faults", path_prefix=f"/refunds/{rid}/approve", count=1, after=True, delay_s=3.0
        )
    drained = start_worker(ws.root, 1)
    other = None
    try:
        run = coordinator(ws)
        with reaped(run):
            in_hand: set[str] = set()
            while not in_hand:
                assert run.poll() is None and drained.poll() is None
                with contextlib.suppress(sqlalchemy.exc.ProgrammingError):  # no schema yet
                    in_hand = acting_keys(postgres_url)
                time.sleep(0.05)
            drained.send_signal(signal.SIGTERM)
            assert drained.wait(timeout=120) == 0, (ws.root / "worker-1.out").read_text()
            states = dict(
                pg_rows(
                    postgres_url, "SELECT item_key, state FROM work_items WHERE robot = 'refunds'"
                )
            )
            assert {states[k] for k in in_hand} == {"done"}, {k: states[k] for k in in_hand}
            assert "pending" in states.values()  # the rest waited, untouched
            ws.sandbox.control("reset")  # the rest answer at once: only the drain was the point
            other = start_worker(ws.root, 2)
            _out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    finally:
        kill_group(drained)
        if other is not None:
            kill_group(other)
    assert_the_ground_truth_once(ws, postgres_url)
    assert "approved" in (ws.root / "worker-2.out").read_text()


@pytest.mark.refunds(60)
def test_the_scheduler_sends_its_fires_to_the_workers(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    """With [cluster] broker set, a scheduled fire of refunds runs as the coordinator."""
    from test_scheduler import Scheduler, schedule, wait_for

    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    with (ws.root / "robots.toml").open("a", encoding="utf-8") as toml:
        toml.write(schedule("often", every_seconds=2))
    worker = start_worker(ws.root, 1)
    try:
        sched = Scheduler(ws.root)
        try:
            fire = wait_for("a finished fire", lambda: sched.finished(), timeout=600)[0]
        finally:
            code, out = sched.stop()
        assert code == 0, out
    finally:
        kill_group(worker)
    assert fire["outcome"] == "ok", dict(fire)
    run_log = ws.root / "logs" / fire["run_id"] / "run.log"  # the fire's run, a coordinator
    assert "sent to the workers" in run_log.read_text(encoding="utf-8")
    runs = {r[0]: r for r in ledger_runs(postgres_url)}
    assert fire["run_id"] in runs and runs[fire["run_id"]][1] is not None
    assert "approved" in (ws.root / "worker-1.out").read_text()
    approved = approvals(ws)
    assert approved and max(approved.values()) == 1


@pytest.mark.refunds(60)
def test_workers_follow_an_edited_scenario_and_refuse_a_different_copy(
    tmp_path: Path, workspace: Workspace, postgres_url: str, redis_url: str
) -> None:
    """A long-running worker loads the scenario again when the coordinator's text changed
    (an edited selector that reads nothing stops the next run, nothing approved with the old
    text); a worker whose own copy differs from the coordinator's leaves the run's items."""
    ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, redis_url)
    scenario = ws.root / "refunds.toml"
    worker = start_worker(ws.root, 1)
    try:
        first = coordinator(ws, "--limit", "10")
        with reaped(first):
            _out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
        approved = len(ws.sandbox.audit())
        assert approved, err
        good = scenario.read_text(encoding="utf-8")
        broken = good.replace(
            'selector = "[data-field=reason]"',
            'selector = "[data-field=no-such-field]"',
        )
        assert broken != good
        scenario.write_text(broken, encoding="utf-8")
        second = coordinator(ws)
        with reaped(second):
            _out, err = second.communicate(timeout=600)
        assert second.returncode != 0, err
        assert "reason" in err and "no-such-field" in err, err
        assert len(ws.sandbox.audit()) == approved  # nothing approved with the old text
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0

        scenario.write_text(good, encoding="utf-8")
        # another machine: its own copy of the scenario (edited there) and its own password
        elsewhere = tmp_path / "other-machine"
        (elsewhere / "secrets").mkdir(parents=True)
        creds = elsewhere / "secrets" / "credentials.toml"
        right = (ws.root / "secrets" / "credentials.toml").read_text(encoding="utf-8")
        creds.write_text(right.replace(PASSWORD, "not-the-password"), encoding="utf-8")
        creds.chmod(0o600)
        toml = (ws.root / "robots.toml").read_text(encoding="utf-8")
        (elsewhere / "robots.toml").write_text(
            toml.replace(str(ws.root / "secrets"), str(elsewhere / "secrets")), encoding="utf-8"
        )
        (elsewhere / "refunds.toml").write_text(good + "\n# edited on this machine only\n")
        worker = start_worker(elsewhere, 2)

        def run_to_its_end() -> tuple[int, str]:
            run = coordinator(ws)
            with reaped(run):
                _out, err = run.communicate(timeout=600)
            return run.returncode, err

        code, err = run_to_its_end()
        assert code != 0 and "differs from the coordinator's" in err, err
        (elsewhere / "refunds.toml").write_text(good)
        code, err = run_to_its_end()  # the same worker tries this run again: its password
        assert code != 0 and "refused credential" in err, err
        assert len(ws.sandbox.audit()) == approved
        creds.write_text(right, encoding="utf-8")  # put right there: the next run goes through
        code, err = run_to_its_end()
        assert code == 0, err
        assert len(ws.sandbox.audit()) > approved and max(approvals(ws).values()) == 1
        states = ledger_states(postgres_url)
        assert not states["acting"] and not states["pending"], states
    finally:
        kill_group(worker)


def test_a_worker_with_another_word_list_leaves_the_page_scan(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """The fingerprint covers the files a scenario names: a worker whose banned-word list
    differs from the coordinator's (same scenario text) leaves the run, naming the file; with
    the same list the next run goes through."""
    import json

    from conftest import ROOT, start_sandbox, stop_sandbox, write_pagescan_workspace

    sb = start_sandbox(tmp_path / "shop", refunds=1, products=30, seed=5)
    words = (ROOT / "scenarios" / "demo-shop" / "banned-words.txt").read_text(encoding="utf-8")
    roots = []
    for name, more in (("coordinator", ""), ("worker", "本机独有词    极限词    low\n")):
        root = tmp_path / name
        root.mkdir()
        (root / "words.txt").write_text(words + more, encoding="utf-8")
        relative = [(json.dumps(str(root / "words.txt")), '"words.txt"')]
        write_pagescan_workspace(
            root, sb.url, sb.data / "price-list.xlsx", banned=root / "words.txt", edits=relative
        )
        with (root / "robots.toml").open("a", encoding="utf-8") as toml:
            toml.write(cluster_toml(postgres_url, redis_url))
        roots.append(root)
    assert (roots[0] / "pagescan.toml").read_text() == (roots[1] / "pagescan.toml").read_text()
    worker = start_worker(roots[1], 1, robots="pagescan")

    def scan() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            robots_cmd("run", "pagescan", "--cluster", "-w", str(roots[0])),
            capture_output=True,
            text=True,
            timeout=600,
            env=robot_env(),
        )

    try:
        refused = scan()
        assert refused.returncode != 0, refused.stderr
        assert "differs from the coordinator's" in refused.stderr, refused.stderr
        assert str(roots[1] / "words.txt") in refused.stderr, refused.stderr
        (roots[1] / "words.txt").write_text(words, encoding="utf-8")
        done = scan()
        assert done.returncode == 0, done.stderr
    finally:
        kill_group(worker)
        stop_sandbox(sb)


@pytest.mark.refunds(5)
@pytest.mark.live(60, 100)
def test_a_flow_through_two_workers_adds_each_sku_once(
    tmp_path: Path, sandbox: Sandbox, postgres_url: str, redis_url: str
) -> None:
    """直播挂链 on the cluster: the coordinator reads the workbook and sends each item with
    its row; two workers read, decide and add, each SKU once, a worker killed midway."""
    from test_flow_actions import adds, expected, handed_over, pressed_once
    from test_flow_actions import workspace as live_workspace

    skus = [f"LV-{i:04d}" for i in range(60)] + ["LV-9999"]
    add, handed = expected(sandbox, skus)
    root = live_workspace(tmp_path / "ws", sandbox.url, skus)
    with (root / "robots.toml").open("a", encoding="utf-8") as toml:
        toml.write(cluster_toml(postgres_url, redis_url))
    workers = [start_worker(root, n, robots="flow") for n in (1, 2)]
    try:
        run = subprocess.Popen(
            robots_cmd("run", "flow", "live", "--cluster", "-w", str(root)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=robot_env(),
            start_new_session=True,
        )
        with reaped(run):
            while sum(adds(sandbox).values()) < 5:  # one worker killed midway
                assert run.poll() is None, run.communicate()[1]
                time.sleep(0.1)
            kill_group(workers[0])
            workers.append(start_worker(root, 3, robots="flow"))
            _out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
        assert f"done: {len(add)} acted, {len(handed)} to a person" in err, err
    finally:
        for proc in workers:
            kill_group(proc)
    assert adds(sandbox) == Counter(dict.fromkeys(add, 1))
    pressed_once(sandbox, add)
    assert handed_over(root) == handed
    worked = [n for n in (1, 2, 3) if "acted" in (root / f"worker-{n}.out").read_text()]
    assert len(worked) >= 2, worked  # the items were shared out
    states = Counter(
        dict(pg_rows(postgres_url, "SELECT state, count(*) FROM work_items GROUP BY state"))
    )
    assert not states["acting"] and not states["pending"], states
