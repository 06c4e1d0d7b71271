"""Fixtures: a real sandbox server on a free port, and a workspace pointing robots at it."""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "demo-shop" / "refunds.toml"
PASSWORD = "Tst-pw-7Qz!kL2v"  # distinctive, so a leak is found by a plain search
USERNAME = "robot"


# a pytest-xdist worker's number (0 without xdist): what its displays and Redis database are
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


_HELD: list[socket.socket] = []  # ports held shut for the whole test session


# the tests that take minutes, slowest first (`make test` prints the slowest 25): handed out
# first, one at a time (`--dist load --maxschedchunk 1`), so that the workers of `make test`
# do not end with one of them running alone
SLOWEST = (
    "test_links_match_the_ground_truth",
    "test_messier_returns_through_the_browser_hold_the_goals",
    "test_breaking_any_policy_field_on_a_shop_of_words_approves_nothing",
    "test_sigterm_lets_a_worker_finish_the_items_in_hand",
    "test_linked_returns_are_confirmed_by_the_next_refunds_run",
    "test_returns_through_a_worker_at_the_terminal_link_each_parcel_once",
    "test_a_worker_killed_five_times_loses_nothing_and_doubles_nothing",
    "test_a_positional_selector_one_row_off_approves_nothing_a_person_should_see",
    "test_any_slip_of_any_field_only_turns_approvals_into_hand_overs",
    "test_a_page_scan_through_two_workers_finds_the_ground_truth",
    "test_two_workers_approve_the_ground_truth_once",
    "test_findings_match_the_ground_truth",
    "test_a_killed_coordinator_leaves_an_interrupted_run_the_next_one_resumes",
    "test_full_run_matches_ground_truth",
)
# then the modules whose tests are slow on the whole
SLOW_FIRST = (
    "test_workers.py",
    "test_cluster_faults.py",
    "test_cluster.py",
    "test_returns_robot.py",
    "test_warehouse_terminal.py",
    "test_scheduler.py",
    "test_pagescan_robot.py",
    "test_refunds_robot.py",
    "test_label_property.py",
    "test_slips.py",
)


def _slowness(item: pytest.Item) -> tuple[int, bool]:
    name = getattr(item, "originalname", item.name)
    rank = SLOWEST.index(name) if name in SLOWEST else len(SLOWEST)
    return rank, item.path.name not in SLOW_FIRST


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """What a test needs, marked from its fixtures: ``server`` (the cluster's PostgreSQL or
    Redis), ``desktop`` (an X display). `make check` runs the tests that need neither, nor a
    browser. The slowest tests go first."""
    items.sort(key=_slowness)  # stable: the order is kept within each rank
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & {"postgres_url", "redis_url"} or params.get("ledger_url") == "postgresql":
            item.add_marker(pytest.mark.server)
        if "display" in names:
            item.add_marker(pytest.mark.desktop)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """With ROBOTS_TEST_TIMELINE=<file>: one line per test (worker, start, end, CPU seconds,
    id) appended to the file, to see how the workers of `make test` fill the machine and what
    each test costs it. The CPU is the worker's own and its children's (the robots it ran,
    their browsers, the sandbox it started), counted once each child has ended."""
    timeline = os.environ.get("ROBOTS_TEST_TIMELINE")
    start, cpu = time.time(), _cpu_seconds()
    try:
        return (yield)
    finally:
        if timeline:
            used = _cpu_seconds() - cpu
            with open(timeline, "a", encoding="utf-8") as f:
                f.write(f"{WORKER}\t{start:.2f}\t{time.time():.2f}\t{used:.2f}\t{item.nodeid}\n")


def _cpu_seconds() -> float:
    """CPU seconds (user and system) of this process and the children it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def xdist_groups(path: Path) -> dict[str, str]:
    """The ``xdist_group`` of each test function in a test file, by name, read from its
    source: pytest 9's nodes no longer take the ``@group`` suffix xdist 3.8 gives their ids,
    so the scheduler reads the marks itself."""
    marked = re.finditer(
        r'^@pytest\.mark\.xdist_group\("([^"]+)"\)[^\n]*\n(?:@[^\n]*\n)*def (\w+)\(',
        path.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    return {m.group(2): m.group(1) for m in marked}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``--dist loadgroup`` (make test): tests marked ``xdist_group`` (they share an
    expensive module fixture, a scan of a whole shop) go to one worker together, and each
    worker holds the test it runs and one more, not three: the slowest tests, handed out
    first, then do not queue behind each other while another worker runs out of work."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    groups: dict[str, dict[str, str]] = {}

    class OneAhead(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file, _, name = nodeid.partition("::")
            if file not in groups:
                groups[file] = xdist_groups(config.rootpath / file)
            return groups[file].get(name.split("[")[0], nodeid)

        def _reschedule(self, node: object) -> None:
            if getattr(node, "shutting_down", False):
                return
            if not self.workqueue:
                node.shutdown()  # type: ignore[attr-defined]
                return
            if self._pending_of(self.assigned_work[node]) > 1:  # type: ignore[index]
                return
            self._assign_work_unit(node)  # type: ignore[arg-type]

    return OneAhead(config, log)  # type: ignore[arg-type]


def dead_port() -> int:
    """A port where nothing answers, for as long as the tests run: bound and never listened
    on, so a connection is refused and no other test's server can take it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return int(s.getsockname()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def robots_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "robots", *args]


@dataclass
class Sandbox:
    data: Path
    url: str
    process: subprocess.Popen[bytes]

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data / "shop.sqlite3", timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def truth(self) -> dict[str, dict]:
        with (self.data / "ground_truth.jsonl").open(encoding="utf-8") as f:
            return {r["refund_id"]: r for r in map(json.loads, f)}

    def audit(self) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute("SELECT * FROM audit_log ORDER BY audit_id").fetchall()

    def statuses(self) -> dict[str, tuple[str, int, str]]:
        with self.db() as conn:
            return {
                r[0]: (r[1], r[2], r[3])
                for r in conn.execute("SELECT refund_id, status, version, refund_fee FROM refunds")
            }

    def control(self, path: str, **body: object) -> None:
        httpx.post(f"{self.url}_sandbox/{path}", json=body, timeout=10).raise_for_status()

    def requests(self) -> list[tuple[float, str, str]]:
        """(time, method, path) of every request the shop served, control API aside."""
        answer = httpx.get(f"{self.url}_sandbox/requests", timeout=10)
        answer.raise_for_status()
        return [tuple(r) for r in answer.json()["requests"]]  # type: ignore[misc]

    def product_truth(self) -> list[dict]:
        with (self.data / "products_truth.jsonl").open(encoding="utf-8") as f:
            return [json.loads(line) for line in f]


def start_sandbox(
    data: Path,
    *,
    refunds: int,
    seed: int = 7,
    products: int = 0,
    parcels: int = 0,
    shipments: int = 0,
    live: tuple[int, int] = (0, 50),
    conversations: int = 0,
    totp_secret: str | None = None,
) -> Sandbox:
    from sandbox.seed import seed_shop  # here, not through `robots sandbox seed`: test_sandbox
    # tries the command; a fresh interpreter per shop cost the suite a CPU-minute

    seed_shop(
        data,
        refunds=refunds,
        seed=seed,
        username=USERNAME,
        password=PASSWORD,
        now=datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0),
        products=products,
        parcels=parcels,
        orders=parcels * 4,
        shipments=shipments,
        live_products=live[0],
        live_capacity=live[1],
        conversations=conversations,
        totp_secret=totp_secret,
    )
    return serve_sandbox(data)


def serve_sandbox(data: Path) -> Sandbox:
    """The sandbox serving the shop seeded in ``data`` (a copy of another's: the same shop)."""
    for _ in range(5):  # a port another test took between our look and our bind: another
        port = free_port()
        proc = subprocess.Popen(
            robots_cmd("sandbox", "serve", "--data", str(data), "--port", str(port), "--control"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}/"
        if _answers_as(url, data, proc):
            return Sandbox(data, url, proc)
    raise RuntimeError(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}")


def _answers_as(url: str, data: Path, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the sandbox started at ``url`` is ours (the shop in ``data``); one that
    could not take the port is stopped, and False."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            answer = httpx.get(url + "_sandbox/whoami", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if answer.status_code == 200 and answer.json()["data"] == str(data.resolve()):
            return True
        break  # another test's sandbox holds the port
    proc.kill()
    proc.wait(10)
    return False


@pytest.fixture
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    marker = request.node.get_closest_marker("refunds")
    n = marker.args[0] if marker else 200
    products = request.node.get_closest_marker("products")
    parcels = request.node.get_closest_marker("parcels")
    shipments = request.node.get_closest_marker("shipments")
    live = request.node.get_closest_marker("live")  # live(products, capacity)
    conversations = request.node.get_closest_marker("conversations")
    sb = start_sandbox(
        tmp_path / "shop",
        refunds=n,
        products=products.args[0] if products else 0,
        parcels=parcels.args[0] if parcels else 0,
        shipments=shipments.args[0] if shipments else 0,
        live=tuple(live.args) if live else (0, 50),  # type: ignore[arg-type]
        conversations=conversations.args[0] if conversations else 0,
    )
    yield sb
    stop_sandbox(sb)


def stop_sandbox(sb: Sandbox) -> None:
    sb.process.terminate()
    try:
        sb.process.wait(5)
    except subprocess.TimeoutExpired:  # a deliberately stalled request keeps uvicorn waiting
        sb.process.kill()
        sb.process.wait(5)
    if sb.process.stderr:
        sb.process.stderr.close()


@dataclass
class Workspace:
    root: Path
    sandbox: Sandbox
    scenario: Path = SCENARIO

    @property
    def ledger(self) -> Path:
        return self.root / "state" / "ledger.sqlite3"

    def _select(self, sql: str) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.ledger)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def ledger_rows(self) -> list[sqlite3.Row]:
        return self._select("SELECT * FROM work_items ORDER BY id")

    def reports(self) -> list[Path]:
        """The runs' workbooks, oldest first (not the open-exceptions queue)."""
        return sorted(
            p for p in (self.root / "reports").glob("*.xlsx") if p.name != "open-exceptions.xlsx"
        )

    @property
    def queue(self) -> Path:
        return self.root / "reports" / "open-exceptions.xlsx"

    def runs(self) -> list[sqlite3.Row]:
        return self._select("SELECT * FROM runs ORDER BY started_at, run_id")

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            robots_cmd("run", "refunds", "-w", str(self.root), *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=robot_env(),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"robot exited {result.returncode}:\n{result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            robots_cmd("run", "refunds", "-w", str(self.root), *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=robot_env(),
        )


def on_a_terminal(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``robots ARGS`` on a pseudo-terminal (from `script`): its output as a person sees it,
    progress bar included (stdout and stderr both end up in ``stdout``)."""
    import shlex

    return subprocess.run(
        ["script", "-qec", shlex.join(robots_cmd(*args)), "/dev/null"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**robot_env(), "COLUMNS": "120", "TERM": "xterm"},
    )


@contextmanager
def reaped(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> Iterator[None]:
    """A robot started in the background is killed and waited for however the test ends:
    no process outlives its test and no pipe is left open for a later test to trip on."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def items_in_state(ledger: Path, state: str) -> set[str]:
    """Keys of the ledger's items in one state; none while the robot has not yet made its
    tables (the file exists a moment before they do)."""
    if not ledger.exists():
        return set()
    with sqlite3.connect(ledger) as conn:
        try:
            rows = conn.execute("SELECT item_key FROM work_items WHERE state = ?", (state,))
            return {r[0] for r in rows}
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return set()
            raise


def robot_env(**extra: str) -> dict[str, str]:
    """The environment a robot runs in: no credentials or vault key from the developer's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROBOTS_CREDENTIAL_") and k != "ROBOTS_VAULT_KEY"
    }
    return {**env, **extra}


def assert_secrets_absent(paths: list[Path], secrets: list[str]) -> int:
    """No secret in any file (zips, i.e. traces and workbooks, opened; PNG text chunks read).

    Returns how many files were searched, so a caller can tell the search was not empty.
    """
    from PIL import Image

    needles = [s.encode() for s in secrets]
    searched = 0
    for path in paths:
        if not path.is_file():
            continue
        searched += 1
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    inner = z.read(name)
                    for needle in needles:
                        assert needle not in inner, f"{path}!{name}"
        if path.suffix == ".png":
            with Image.open(path) as img:
                meta = " ".join(f"{k}={v}" for k, v in img.info.items())
            for secret in secrets:
                assert secret not in meta, f"{path} metadata"
    return searched


def approvals(ws: Workspace) -> Counter[str]:
    """How often the shop's audit log shows each refund approved."""
    return Counter(row["refund_id"] for row in ws.sandbox.audit())


def expected_approvals(ws: Workspace) -> set[str]:
    return {rid for rid, t in ws.sandbox.truth().items() if t["expected"] == "approve"}


def write_workspace(
    root: Path,
    sandbox_url: str | None,
    *,
    scenario_text: str | None = None,
    parallel: int = 3,
    attempts: int = 3,
    extra: str = "",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    scenario = SCENARIO
    if scenario_text is not None:
        scenario = root / "refunds.toml"
        scenario.write_text(scenario_text, encoding="utf-8")
    creds = root / "secrets" / "credentials.toml"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(f'[demo-shop]\nusername = "{USERNAME}"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    (root / "robots.toml").write_text(
        f"""
[paths]
credentials_file = "{creds}"

[browser]
parallel_pages = {parallel}
timeout_ms = 10000

[retry]
attempts = {attempts}
wait_initial_s = 0.1
wait_max_s = 0.5
{extra}
[[targets]]
name = "sandbox"
robot = "refunds"
scenario = "{scenario}"
{f'base_url = "{sandbox_url}"' if sandbox_url else ""}
""",
        encoding="utf-8",
    )
    return root


def one_target_workspace(
    root: Path,
    url: str,
    scenario: Path,
    *,
    robot: str,
    target: str,
    edits: tuple[tuple[str, str], ...] = (),
    retry: bool = False,
) -> Path:
    """A workspace with one target: ``robot`` on a copy of ``scenario`` (each of ``edits``
    replaced in it, each seen first) at ``url``, the sandbox's credential in a file."""
    root.mkdir(parents=True, exist_ok=True)
    text = scenario.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    (root / scenario.name).write_text(text, encoding="utf-8")
    creds = root / "credentials.toml"
    creds.write_text(f'[demo-shop]\nusername = "{USERNAME}"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    retries = "[retry]\nattempts = 3\nwait_initial_s = 0.1\nwait_max_s = 0.5\n\n" if retry else ""
    (root / "robots.toml").write_text(
        f'[paths]\ncredentials_file = "{creds}"\n\n[browser]\ntimeout_ms = 10000\n\n{retries}'
        f'[[targets]]\nname = "{target}"\nrobot = "{robot}"\nscenario = "{scenario.name}"\n'
        f'base_url = "{url}"\n',
        encoding="utf-8",
    )
    return root


SKINS = {  # the sandbox's two back offices and the scenario that drives each
    "demo-shop": SCENARIO,
    "demo-shop-2": ROOT / "scenarios" / "demo-shop-2" / "refunds.toml",
}


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Sandbox, request: pytest.FixtureRequest) -> Workspace:
    """A workspace for the refunds robot; parametrized indirectly with a skin name it drives
    the second back office (``parametrize("workspace", SKINS, indirect=True)``)."""
    scenario = SKINS[getattr(request, "param", "demo-shop")]
    text = scenario.read_text(encoding="utf-8") if scenario != SCENARIO else None
    return Workspace(
        write_workspace(tmp_path / "ws", sandbox.url, scenario_text=text), sandbox, scenario
    )


PAGESCAN_SCENARIO = ROOT / "scenarios" / "demo-shop" / "pagescan.toml"


def write_pagescan_workspace(
    root: Path,
    sandbox_url: str,
    price_list: Path,
    *,
    requests_per_second: float = 50,
    parallel: int = 2,
    banned: Path | None = None,
    edits: list[tuple[str, str]] | None = None,
) -> Path:
    """A workspace whose pagescan target reads the given shop, price list and word list;
    ``edits`` are (old, new) replacements in its scenario text."""
    root.mkdir(parents=True, exist_ok=True)
    words = PAGESCAN_SCENARIO.parent
    text = PAGESCAN_SCENARIO.read_text(encoding="utf-8")
    text = text.replace('"../../var/sandbox/price-list.xlsx"', json.dumps(str(price_list)))
    text = text.replace(
        'banned = "banned-words.txt"',
        f"banned = {json.dumps(str(banned or words / 'banned-words.txt'))}",
    )
    text = text.replace(
        'allowlist = "allowlist.txt"', f"allowlist = {json.dumps(str(words / 'allowlist.txt'))}"
    )
    text = text.replace("requests_per_second = 20", f"requests_per_second = {requests_per_second}")
    for old, new in edits or []:
        assert old in text, old
        text = text.replace(old, new)
    scenario = root / "pagescan.toml"
    scenario.write_text(text, encoding="utf-8")
    (root / "robots.toml").write_text(
        f"""
[browser]
parallel_pages = {parallel}
timeout_ms = 10000

[retry]
attempts = 3
wait_initial_s = 0.1
wait_max_s = 0.5

[[targets]]
name = "shop-pages"
robot = "pagescan"
scenario = "{scenario}"
base_url = "{sandbox_url}"
""",
        encoding="utf-8",
    )
    return root


def run_pagescan(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd("run", "pagescan", "-w", str(root), *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=robot_env(),
    )


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """One Xvfb for every desktop test: pyautogui keeps its first X connection for good.
    Xvfb picks its own free number (sandbox/xvfb.py), so two runs never share a display."""
    from sandbox.xvfb import Xvfb

    xvfb = Xvfb("1280x800x24")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = xvfb.display
    yield xvfb.display
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    xvfb.stop()


@dataclass
class Terminal:
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


def start_terminal(sb: Sandbox, display: str, export_dir: Path) -> Terminal:
    """The sandbox's warehouse terminal on ``display``, once its window is up."""
    env = {**os.environ, "DISPLAY": display}
    export_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        robots_cmd("sandbox", "terminal", "--data", str(sb.data), "--export-dir", str(export_dir)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=export_dir,  # an export typed as a relative path lands here, not in the checkout
    )
    deadline = time.monotonic() + 30
    while True:
        found = subprocess.run(
            ["xdotool", "search", "--class", "Tk"], env=env, capture_output=True, text=True
        )
        if found.stdout.strip():
            return Terminal(proc)
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
            # communicate() also closes the pipe: left open, it is a warning in a later test
            _, err = proc.communicate(timeout=10)
            said = err.decode(errors="replace")
            raise RuntimeError(f"terminal did not start on {display}: {said}")
        time.sleep(0.1)


# -- the cluster's servers: PostgreSQL and Redis (make test starts them when none answers) --
POSTGRES = os.environ.get(
    "ROBOTS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def own_database(url: str) -> str:
    """The Redis URL with this xdist worker's own database (15, 14, … from the one given):
    the cluster tests empty theirs before and after."""
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 15) - WORKER}" if db.isdigit() or not db else url


REDIS = own_database(os.environ.get("ROBOTS_TEST_REDIS", "redis://127.0.0.1:6379/15"))


def _server_database(url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL at ``url``, dropped after; a server that does not
    answer fails the test (the cluster is tested on a real one, never skipped)."""
    import secrets

    import sqlalchemy

    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"robots_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"no PostgreSQL answers at {url} ({str(exc).splitlines()[0]}): run the tests "
            "through `make test`, which starts one, or set ROBOTS_TEST_POSTGRES"
        )
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL of an empty PostgreSQL database for this test."""
    yield from _server_database(POSTGRES)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same ledger test on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        yield from _server_database(POSTGRES)
