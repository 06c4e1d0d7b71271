"""`robots console`: the control room, driven in a real Chromium as a reviewer and a viewer
would, against a refunds run's open exceptions in a sandbox shop."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
from conftest import PASSWORD, Sandbox, Workspace, free_port, reaped, robot_env, robots_cmd
from report_checks import values

APPROVABLE = {"OVER_AMOUNT_CAP", "BUYER_RISK", "REASON_NOT_AUTOMATABLE", "MERCHANT_FAULT"}
SCRIPT_NICK = '<script>alert("x")</script>买家'
PASSWORDS = {"wang": "review-pw-1234", "li": "viewer-pw-1234", "ops": "operator-pw-1234"}
ROLES = {"wang": "reviewer", "li": "viewer", "ops": "operator"}


def add_user(root: Path, name: str) -> None:
    done = subprocess.run(
        robots_cmd(
            "console", "users", "add", name, "--role", ROLES[name], "--password-stdin",
            "-w", str(root),
        ),
        input=PASSWORDS[name] + "\n",
        capture_output=True,
        text=True,
        env=robot_env(),
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def serving_console(root: Path, **env: str) -> Iterator[str]:
    """The console of the workspace in ``root`` on a free port (``env``: more of its
    environment, e.g. the X display its children type on), with a reviewer, a viewer and an
    operator."""
    for name in PASSWORDS:
        add_user(root, name)
    port = free_port()
    proc = subprocess.Popen(
        robots_cmd("console", "-w", str(root), "--port", str(port)),
        env={**robot_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    with reaped(proc):
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the console did not answer"
                time.sleep(0.2)
        yield url


@pytest.fixture
def console(workspace: Workspace) -> Iterator[str]:
    with serving_console(workspace.root) as url:
        yield url


@pytest.fixture
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    from robots.runtime.browser import CHROMIUM_FLAGS, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=find_chromium(None, None), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: object, url: str, name: str) -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_selector("header nav")
    return page


def give_nickname(ws: Workspace, refund_id: str, nick: str) -> None:
    """The buyer of ``refund_id`` renamed in the shop (a nickname is the buyer's choice)."""
    with ws.sandbox.db() as conn:
        (old,) = conn.execute(
            "SELECT l.buyer_nick FROM refunds r JOIN order_lines l USING (line_id) "
            "WHERE r.refund_id = ?",
            (refund_id,),
        ).fetchone()
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("UPDATE buyers SET buyer_nick = ? WHERE buyer_nick = ?", (nick, old))
        conn.execute("UPDATE order_lines SET buyer_nick = ? WHERE buyer_nick = ?", (nick, old))


def queue_rows(ws: Workspace) -> dict[str, dict]:
    wb = openpyxl.load_workbook(ws.queue)
    return {r["退款编号"]: r for r in values(wb["退款待人工处理"])}


@pytest.mark.browser
@pytest.mark.refunds(120)
def test_a_reviewer_decides_the_queue_online(workspace: Workspace, console: str, chromium) -> None:
    """A reviewer signs in, filters the queue, approves two refunds and holds one: the shop's
    audit log shows exactly those two approvals, the console and the next queue workbook
    show the results; a refund that fails a hard rule cannot be approved from the console; a
    buyer's nickname holding <script> is shown as text."""
    truth = workspace.sandbox.truth()
    first = next(rid for rid, t in sorted(truth.items()) if t["expected"] == "person")
    give_nickname(workspace, first, SCRIPT_NICK)
    workspace.run()
    before = queue_rows(workspace)
    approvable = [k for k, r in before.items() if r["原因代码"] in APPROVABLE]
    unreceived = [k for k, r in before.items() if "RETURN_NOT_RECEIVED" in r["原因代码"]]
    assert len(approvable) >= 3 and unreceived, {r["原因代码"] for r in before.values()}
    approve, hold, never = approvable[:2], approvable[2], unreceived[0]
    audit_before = {r["refund_id"] for r in workspace.sandbox.audit()}

    page = sign_in(chromium, console, "wang")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(console + "/queue")
    shown = page.locator("table.queue tbody tr[data-key]").count()
    assert shown == len(before)
    # a nickname with markup is text on the page, never a script
    cell = page.locator(f"tr:has(a:text-is('{first}')) td.buyer")
    assert cell.inner_text() == SCRIPT_NICK
    assert dialogs == []
    # filter: one reason only
    reason = before[approve[0]]["原因代码"]
    page.select_option("select[name=reason]", reason)
    page.click("form.filters button")
    page.wait_for_url("**/queue?**reason=*")
    rows = page.locator("table.queue tbody tr[data-key]")
    assert rows.count() == sum(1 for r in before.values() if r["原因代码"] == reason)
    page.goto(console + "/queue")
    for refund_id, decision in ((approve[0], "approve"), (approve[1], "approve"), (hold, "hold")):
        page.select_option(f"select[aria-label='决定 {refund_id}']", decision)
    page.fill(f"input[aria-label='备注 {hold}']", "等买家补充照片")
    page.select_option(f"select[aria-label='决定 {never}']", "approve")
    page.click("button.primary")
    page.wait_for_selector("h1:text('处理结果')", timeout=300_000)
    result = {
        row.get_attribute("data-refund"): row.locator("td code").inner_text()
        for row in page.locator("tr[data-refund]").all()
    }
    assert result == {
        approve[0]: "APPLIED",
        approve[1]: "APPLIED",
        hold: "HELD",
        never: "REFUSED_HARD_RULE",
    }
    # the shop: exactly those two approvals, once each
    new = [r["refund_id"] for r in workspace.sandbox.audit() if r["refund_id"] not in audit_before]
    assert sorted(new) == sorted(approve)
    # the console's queue and the next workbook: the two gone, the held one kept with its review
    page.goto(console + "/queue")
    keys = {r.get_attribute("data-key").split("@")[0] for r in page.locator("tr[data-key]").all()}
    assert not keys & set(approve) and {hold, never} <= keys
    assert "暂缓：wang 等买家补充照片" in page.locator(f"tr:has(a:text-is('{hold}'))").inner_text()
    after = queue_rows(workspace)
    assert not set(after) & set(approve) and hold in after and never in after
    # every decision audited with what its row showed
    ops = sign_in(chromium, console, "ops")
    ops.goto(console + "/audit")
    audit_text = ops.locator("table").inner_text()
    for refund_id in (*approve, hold, never):
        assert refund_id in audit_text
    assert dialogs == []
    # 总览's charts count today's runs and money as the ledger has them
    ops.goto(console + "/")
    data = json.loads(ops.locator("#chart-data").text_content())
    assert sum(counts[-1] for counts in data["runs"].values()) == len(workspace.runs())
    approved = sum(int(r["amount_cents"]) for r in workspace.ledger_rows() if r["state"] == "done")
    assert round(data["approved"][-1] * 100) == approved > 0
    assert data["cap"] == 20000


@pytest.mark.browser
@pytest.mark.refunds(40)
def test_signing_in_roles_and_csrf(workspace: Workspace, console: str, chromium) -> None:
    """``/`` is the sign-in page (its form carries a CSRF token) until one signs in; a wrong
    password is refused; a viewer sees the queue but their decision is refused (403); a form
    POST without its CSRF token is refused (403); pages send no-framing headers."""
    workspace.run()
    anonymous = httpx.get(console + "/")
    assert anonymous.status_code == 200 and 'name="csrf"' in anonymous.text
    assert anonymous.headers["x-frame-options"] == "DENY"
    assert httpx.get(console + "/queue", follow_redirects=False).status_code == 303

    page = chromium.new_page()
    page.goto(console + "/")
    page.fill("input[name=name]", "wang")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "用户名或密码不正确"

    viewer = sign_in(chromium, console, "li")
    viewer.goto(console + "/queue")
    assert viewer.locator("table.queue tbody tr[data-key]").count() > 0
    assert viewer.locator("table.queue select").count() == 0  # nothing to decide with
    key = viewer.locator("table.queue tbody tr[data-key]").first.get_attribute("data-key")
    token = viewer.locator("input[name=csrf]").first.input_value()
    refused = viewer.request.post(
        console + "/queue/decide", form={"csrf": token, f"decision:{key}": "approve"}
    )
    assert refused.status == 403 and "无权限" in refused.text()
    assert viewer.request.get(console + "/audit").status == 403

    reviewer = sign_in(chromium, console, "wang")
    # 总览 draws its charts with the Chart.js the console serves (no CDN, no inline script)
    errors: list[str] = []
    reviewer.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    reviewer.goto(console + "/")
    reviewer.wait_for_selector("body[data-charts=drawn]")
    assert reviewer.locator("canvas").count() == 3 and errors == []
    assert httpx.get(console + "/static/chart.umd.min.js").status_code == 200
    no_token = reviewer.request.post(console + "/queue/decide", form={f"decision:{key}": "hold"})
    assert no_token.status == 403 and "CSRF" in no_token.text()
    wrong = reviewer.request.post(
        console + "/queue/decide", form={"csrf": "guess", f"decision:{key}": "hold"}
    )
    assert wrong.status == 403
    audit = {r["refund_id"] for r in workspace.sandbox.audit()}
    assert key.split("@")[0] not in audit  # nothing reached the shop
    # no secret on any page: the shop's password, the people's passwords or their hashes
    ops = sign_in(chromium, console, "ops")
    [run] = workspace.runs()
    secrets = [PASSWORD, *PASSWORDS.values(), "$argon2"]
    for path in ("/", "/queue", "/runs", f"/runs/{run['run_id']}", "/schedules", "/audit"):
        html = ops.request.get(console + path).text()
        assert not [s for s in secrets if s in html], path


@pytest.mark.browser
@pytest.mark.refunds(120)
def test_a_run_started_from_the_console_shows_progress_and_stops(
    workspace: Workspace, console: str, chromium
) -> None:
    """An operator starts the refunds target from 运行; the run appears as 运行中 with its
    counts moving while its page reloads itself; 停止 stops it as SIGTERM does (the item in
    hand finished, exit 143, 已停止). A viewer has neither button."""
    # every refund's page answers 0.4 s late: the run takes long enough to be stopped
    workspace.sandbox.control(
        "faults", path_prefix="/refunds/RF", count=100000, status=0, delay_s=0.4
    )
    viewer = sign_in(chromium, console, "li")
    viewer.goto(console + "/runs")
    assert viewer.locator("form.start").count() == 0
    page = sign_in(chromium, console, "ops")
    page.goto(console + "/runs")
    page.select_option("form.start select[name=target]", "sandbox")
    page.click("form.start button")
    page.wait_for_url("**/runs?started=sandbox")
    deadline = time.monotonic() + 120
    while page.locator("tr[data-run] td.status:text-is('运行中')").count() == 0:
        assert time.monotonic() < deadline, "the started run never showed as running"
        time.sleep(0.5)
        page.reload()
    page.locator("tr[data-run]:has(td.status:text-is('运行中')) a").first.click()
    run_url = page.url
    done = page.locator(".progress [data-state=done] b")
    deadline = time.monotonic() + 180
    while int(done.inner_text()) < 2:  # the page reloads itself every 2 s
        assert time.monotonic() < deadline, "no progress shown"
        page.wait_for_timeout(500)
    before = int(done.inner_text())
    deadline = time.monotonic() + 120
    while int(done.inner_text()) <= before:  # the counts move while it runs
        assert time.monotonic() < deadline, "the counts did not move"
        page.wait_for_timeout(500)
    assert viewer.request.post(run_url + "/stop", form={"csrf": "x"}).status == 403
    page.click("button.danger")
    deadline = time.monotonic() + 180
    while page.locator("b.status").inner_text() == "运行中":
        assert time.monotonic() < deadline, "the run did not stop"
        page.wait_for_timeout(500)
        page.goto(run_url)
    assert page.locator("b.status").inner_text() == "已停止"
    assert "退出码 143" in page.locator("main p").first.inner_text()
    [row] = [r for r in workspace.runs() if r["run_id"] in run_url]
    summary = json.loads(row["summary"])
    assert summary["stopped"] and summary["exit_code"] == 143
    assert "process" not in summary  # the end replaced it


@pytest.mark.browser
@pytest.mark.refunds(20)
def test_schedules_are_paused_resumed_and_run_from_the_console(
    workspace: Workspace, console: str, chromium
) -> None:
    """计划 lists robots.toml's schedules with their next fire time; an operator pauses one
    (the scheduler service skips its fires and records why), resumes it, and runs it now (a
    run of its target in the ledger); a viewer sees no buttons."""
    from zoneinfo import ZoneInfo

    from robots.registry import load_workspace
    from scheduler.history import History
    from scheduler.service import Service, job_store_path

    with (workspace.root / "robots.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[schedules]]\nname = "nightly"\ntarget = "sandbox"\ncron = "0 3 * * *"\n')
    viewer = sign_in(chromium, console, "li")
    viewer.goto(console + "/schedules")
    assert viewer.locator("tr[data-schedule=nightly]").count() == 1
    assert viewer.locator("tr[data-schedule=nightly] button").count() == 0
    page = sign_in(chromium, console, "ops")
    page.goto(console + "/schedules")
    row = page.locator("tr[data-schedule=nightly]")
    assert " 03:00" in row.inner_text() and row.locator("td.state").inner_text() == "启用"
    row.locator("button.pause").click()
    page.wait_for_url("**/schedules")
    assert row.locator("td.state").inner_text() == "已暂停（ops）"

    ws = load_workspace(workspace.root)
    service = Service(ws)
    try:
        service.fire("nightly")  # what the service does when the time comes
    finally:
        service.history.close()
    history = History(job_store_path(ws), ZoneInfo(ws.config.scheduler.timezone))
    try:
        [fire] = history.fires("nightly")
    finally:
        history.close()
    assert fire.outcome == "skipped" and fire.detail.startswith("paused by ops")
    assert workspace.runs() == []  # nothing ran

    page.reload()
    row.locator("button.resume").click()
    page.wait_for_url("**/schedules")
    assert row.locator("td.state").inner_text() == "启用"
    row.locator("button.run").click()
    page.wait_for_url("**/runs?started=sandbox")
    deadline = time.monotonic() + 120
    while not [r for r in workspace.runs() if r["ended_at"]]:
        assert time.monotonic() < deadline, "the schedule's run never ended"
        time.sleep(0.5)
    page.goto(console + "/audit")
    audit = page.locator("table").inner_text()
    for action in ("schedule_pause", "schedule_resume", "schedule_run"):
        assert action in audit


@pytest.mark.browser
@pytest.mark.refunds(20)
def test_a_runs_items_link_their_page_and_evidence(
    workspace: Workspace, console: str, chromium
) -> None:
    """A refund whose page keeps failing ends as a system exception with a masked
    screenshot and a trace: the run's page links both (the screenshot shown, the trace
    downloaded) and the refund's shop page; nothing outside the logs folder is served."""
    refund = sorted(workspace.sandbox.truth())[0]
    workspace.sandbox.control("faults", path_prefix=f"/refunds/{refund}", count=50, status=500)
    assert workspace.run(check=False).returncode == 1  # one system exception
    [run] = workspace.runs()
    page = sign_in(chromium, console, "li")
    page.goto(f"{console}/runs/{run['run_id']}")
    row = page.locator(f"tr:has(td:text-matches('^{refund}@'))")
    assert "system_exception" in row.inner_text()
    shots = row.locator("td.evidence a:text-is('截图')")
    assert shots.count() >= 1
    shown = page.request.get(console + shots.first.get_attribute("href"))
    assert shown.status == 200 and shown.headers["content-type"] == "image/png"
    assert shown.body()[:8] == b"\x89PNG\r\n\x1a\n"
    trace = row.locator("td.evidence a:text-is('跟踪 trace')")
    assert trace.count() == 1
    with page.expect_download() as download:
        trace.click()
    assert download.value.suggested_filename.endswith(".zip")
    link = row.locator("a:text-is('打开')").get_attribute("href")
    assert link.endswith(f"/refunds/{refund}")
    for outside in ("%2E%2E/robots.toml", "..%2Frobots.toml", "%2E%2E/credentials.toml"):
        assert page.request.get(f"{console}/evidence/{outside}").status == 404
    anonymous = httpx.get(console + shots.first.get_attribute("href"), follow_redirects=False)
    assert anonymous.status_code == 303  # evidence is for people signed in


@pytest.mark.browser
@pytest.mark.refunds(120)
def test_the_console_over_a_cluster(
    tmp_path: Path, workspace: Workspace, postgres_url: str, chromium
) -> None:
    """The same console over the cluster's PostgreSQL ledger, with two workers on Redis: a
    run started from it goes to the workers (--cluster) and is shown to its end; its
    hand-overs are decided online (one approved, one held) exactly once in the shop; the
    people and the audit live in PostgreSQL."""
    import redis
    from test_workers import REDIS, cluster_ws, pg_rows, running_workers

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    try:
        ws = cluster_ws(tmp_path / "cws", workspace, postgres_url, REDIS)
        with running_workers(ws.root), serving_console(ws.root) as url:
            page = sign_in(chromium, url, "ops")
            page.goto(url + "/runs")
            page.click("form.start button")
            deadline = time.monotonic() + 600
            while page.locator("tr[data-run] td.status:text-is('完成')").count() == 0:
                assert time.monotonic() < deadline, page.locator("table.runs").inner_text()
                time.sleep(1)
                page.reload()
            [(run_id,)] = pg_rows(postgres_url, "SELECT run_id FROM runs")
            worked = pg_rows(postgres_url, "SELECT details FROM work_items")
            # the workers worked its items (each noted what it counted for this run)
            assert worked and all(
                (d if isinstance(d, dict) else json.loads(d))["worked"]["run"] == run_id
                for (d,) in worked
            )
            reviewer = sign_in(chromium, url, "wang")
            reviewer.goto(url + "/queue")
            rows = reviewer.locator("table.queue tbody tr[data-key]")
            approvable = [
                r.get_attribute("data-key").split("@")[0]
                for r in rows.all()
                if r.locator("code").first.inner_text() in APPROVABLE
            ]
            assert len(approvable) >= 2, reviewer.locator("table.queue").inner_text()
            before = {r["refund_id"] for r in workspace.sandbox.audit()}
            reviewer.select_option(f"select[aria-label='决定 {approvable[0]}']", "approve")
            reviewer.select_option(f"select[aria-label='决定 {approvable[1]}']", "hold")
            reviewer.click("button.primary")
            reviewer.wait_for_selector("h1:text('处理结果')", timeout=300_000)
            codes = [c.inner_text() for c in reviewer.locator("tr[data-refund] code").all()]
            assert codes == ["APPLIED", "HELD"]
        new = [r["refund_id"] for r in workspace.sandbox.audit() if r["refund_id"] not in before]
        assert new == [approvable[0]]
        people = dict(pg_rows(postgres_url, "SELECT name, role FROM console_users"))
        assert people == ROLES
        actions = {a for (a,) in pg_rows(postgres_url, "SELECT action FROM console_audit")}
        assert {"run_start", "decide", "applied"} <= actions
    finally:
        client.flushdb()
        client.close()


@pytest.mark.parcels(40)
def test_a_reviewer_picks_a_parcels_order_online(
    sandbox: Sandbox, display: str, tmp_path: Path, chromium
) -> None:
    """Parcels the returns robot could not link beyond doubt: a reviewer picks a candidate
    for one (linked through the warehouse terminal, verified on its page, once) and 不关联 for
    another (closed, nothing typed); both leave the queue; a second try changes nothing."""
    from test_returns_robot import links, run, terminal_and_workspace

    with terminal_and_workspace(sandbox, display, tmp_path) as ws:
        assert run(ws, display).returncode == 0
        before = {r["parcel_id"] for r in links(sandbox)}
        with serving_console(ws, DISPLAY=display) as url:
            page = sign_in(chromium, url, "wang")
            page.goto(url + "/queue?robot=returns")
            picks = page.locator("table.queue select")
            assert picks.count() >= 2, page.locator("table.queue").inner_text()
            first = picks.nth(0).get_attribute("aria-label").removeprefix("决定 ")
            second = picks.nth(1).get_attribute("aria-label").removeprefix("决定 ")
            options = picks.nth(0).locator("option").all()
            values = [o.get_attribute("value") or "" for o in options]
            chosen = next(v for v in values if v.startswith("link:"))
            picks.nth(0).select_option(chosen)
            picks.nth(1).select_option("dismiss")
            page.click("button.primary")
            page.wait_for_selector("h1:text('处理结果')", timeout=300_000)
            result = {
                row.get_attribute("data-refund"): row.locator("td code").inner_text()
                for row in page.locator("tr[data-refund]").all()
            }
            assert result == {first: "LINKED", second: "DISMISSED"}
            made = {r["parcel_id"]: r["target"] for r in links(sandbox)}
            assert set(made) - before == {first}
            assert made[first] == chosen.removeprefix("link:")
            page.goto(url + "/queue?robot=returns")
            left = {r.get_attribute("data-key") for r in page.locator("tr[data-key]").all()}
            assert first not in left and second not in left
        # the next run of the robot leaves both alone (done in the ledger)
        assert run(ws, display).returncode == 0
        assert {r["parcel_id"]: r["target"] for r in links(sandbox)} == made


def page_finding_rows(root: Path) -> int:
    wb = openpyxl.load_workbook(root / "reports" / "open-exceptions.xlsx")
    return sum(len(values(wb[name])) for name in wb.sheetnames if name.startswith("商品页"))


@pytest.mark.browser
@pytest.mark.products(12)
def test_page_findings_are_decided_online(sandbox: Sandbox, tmp_path: Path, chromium) -> None:
    """The page scan's findings are in the console's queue as in the open-exceptions
    workbook, each with its page. A reviewer marks one 误报, one 忽略 and one 已修改: all three
    leave the queue and the workbook; the next scan, seeing the pages unchanged, keeps the
    first two settled and brings the 已修改 one back, marked (it was not fixed after all)."""
    from conftest import run_pagescan, write_pagescan_workspace

    root = write_pagescan_workspace(tmp_path / "ws", sandbox.url, sandbox.data / "price-list.xlsx")
    assert run_pagescan(root).returncode == 0
    in_book = page_finding_rows(root)
    with serving_console(root) as url:
        page = sign_in(chromium, url, "wang")
        page.goto(url + "/queue?robot=pagescan")
        rows = page.locator("table.queue tbody tr[data-key]")
        assert rows.count() == in_book
        links = {a.get_attribute("href") for a in page.locator("table.queue tbody a").all()}
        assert links and all("/shop/p/" in h for h in links)
        picks = page.locator("table.queue select")
        assert picks.count() >= 3, page.locator("table.queue").inner_text()
        keys = [
            picks.nth(i).locator("xpath=ancestor::tr").get_attribute("data-key") for i in range(3)
        ]
        for i, decision in enumerate(("false_positive", "ignore", "fixed")):
            picks.nth(i).select_option(decision)
        page.click("button.primary")
        page.wait_for_selector("h1:text('处理结果')", timeout=120_000)
        codes = [c.inner_text() for c in page.locator("tr[data-refund] code").all()]
        assert codes == ["RECORDED"] * 3
        page.goto(url + "/queue?robot=pagescan")
        left = {r.get_attribute("data-key") for r in page.locator("tr[data-key]").all()}
        assert not left & set(keys) and len(left) == in_book - 3
        done = subprocess.run(
            robots_cmd("report", "--open", "-w", str(root)),
            capture_output=True, text=True, env=robot_env(), timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert page_finding_rows(root) == in_book - 3
        # the next scan sees the pages as they were: 已修改 was not true
        assert run_pagescan(root).returncode == 0
        page.goto(url + "/queue?robot=pagescan")
        left = {r.get_attribute("data-key") for r in page.locator("tr[data-key]").all()}
        assert keys[2] in left and not left & set(keys[:2])
        back = page.locator("tr[data-key]").filter(has_text="标记已修改，但之后的巡检仍发现")
        assert back.count() == 1


def test_listening_beyond_this_machine_needs_a_setting(workspace: Workspace) -> None:
    done = subprocess.run(
        robots_cmd("console", "-w", str(workspace.root), "--host", "0.0.0.0"),
        capture_output=True,
        text=True,
        env=robot_env(),
        timeout=60,
    )
    assert done.returncode == 2
    first = done.stderr.strip().splitlines()[0]
    assert "console.allow_remote" in first and "robots.toml" in first, done.stderr


def test_passwords_are_hashed_and_roles_checked(tmp_path: Path) -> None:
    from robots.console.accounts import hash_password, may, password_matches

    stored = hash_password("s3cret-enough")
    assert "s3cret" not in stored and stored.startswith("$argon2id$")
    assert password_matches(stored, "s3cret-enough")
    assert not password_matches(stored, "s3cret-enougH")
    assert not password_matches(None, "s3cret-enough")
    with pytest.raises(ValueError):
        hash_password("short")
    assert may("operator", "reviewer") and may("reviewer", "viewer")
    assert not may("viewer", "reviewer") and not may("nobody", "viewer")


def test_the_consoles_decisions_file_is_checked_as_the_queue_is(tmp_path: Path) -> None:
    """What `robots apply` reads from the console: every problem named by decision number,
    nothing applied; a good file gives the rows."""
    from robots.errors import InvalidReview
    from robots.refunds.review import read_review

    good = {
        "refund_id": "RF1", "item": "RF1@WAIT_SELLER_AGREE", "run": "run-1",
        "decision": "approve", "reviewer": "wang", "note": "",
    }  # fmt: skip
    file = tmp_path / "decisions.json"

    def read() -> object:
        return read_review(
            file,
            run_is_known=lambda run: run == "run-1",
            item_is_known=lambda key: key == good["item"],
            scenario_of=lambda _run: "/shop/refunds.toml",
        )

    file.write_text(json.dumps({"rows": [good]}), encoding="utf-8")
    review = read()
    assert [(r.refund_id, r.decision, r.reviewer) for r in review.rows] == [
        ("RF1", "approve", "wang")
    ]
    assert review.queue and review.scenario == "/shop/refunds.toml"
    bad = [
        {**good, "decision": "maybe"},
        {**good, "item": "RF2@WAIT_SELLER_AGREE", "refund_id": "RF2", "reviewer": ""},
        {**good, "run": "run-9"},
    ]
    file.write_text(json.dumps({"rows": bad}), encoding="utf-8")
    with pytest.raises(InvalidReview) as caught:
        read()
    said = str(caught.value)
    assert "decision 1, decision: unknown decision 'maybe'" in said
    assert "decision 2, reviewer" in said and "decision 2, item" in said
    assert "decision 3, run: run run-9 is not in this ledger" in said
    file.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(InvalidReview, match="not the console's decisions"):
        read()


def test_parcel_decisions_are_checked_whole(tmp_path: Path) -> None:
    """A parcel is linked only to a candidate the robot listed for it; an unknown decision,
    a missing reviewer, an unknown parcel and a parcel decided twice are named, nothing
    applied."""
    from datetime import datetime

    from robots.errors import InvalidReview
    from robots.ledger import ItemView, State
    from robots.returns.apply import read_parcel_decisions

    top = [{"target": "TR1", "score": 70}, {"target": "TO2", "score": 60}]
    view = ItemView(
        "PK1", State.BUSINESS_EXCEPTION, 1, "w", "", 0, "NEEDS_REVIEW", "", (),
        {"row": {"parcel_id": "PK1", "top": top}}, "run-1", datetime(2026, 12, 1),
    )  # fmt: skip
    file = tmp_path / "decisions.json"

    def read(rows: list[dict]) -> object:
        file.write_text(json.dumps({"robot": "returns", "rows": rows}), encoding="utf-8")
        return read_parcel_decisions(file, item=lambda key: view if key == "PK1" else None)

    ok = {"parcel_id": "PK1", "decision": "link", "target": "TO2", "reviewer": "wang"}
    [d] = read([ok]).rows
    assert (d.parcel_id, d.decision, d.target) == ("PK1", "link", "TO2")
    with pytest.raises(InvalidReview) as caught:
        read(
            [
                {**ok, "target": "TO9"},
                {**ok, "decision": "maybe", "reviewer": ""},
                {**ok, "parcel_id": "PK7"},
            ]
        )
    said = str(caught.value)
    assert "decision 1, target: 'TO9' is not one of the candidates" in said
    assert "decision 2, decision: unknown decision 'maybe'" in said
    assert "decision 2, reviewer" in said and "PK1 is also decided at 1" in said
    assert "decision 3, parcel_id: parcel 'PK7' is not in the ledger" in said


def test_finding_decisions_name_every_problem(tmp_path: Path) -> None:
    from robots.errors import InvalidReview
    from robots.pagescan.review import read_finding_decisions

    file = tmp_path / "decisions.json"
    good = {"finding": "http://x/shop/p/1|SKU1", "fingerprint": "f", "decision": "ignore",
            "reviewer": "wang"}  # fmt: skip
    file.write_text(json.dumps({"robot": "pagescan", "rows": [good]}), encoding="utf-8")
    [d] = read_finding_decisions(file)
    assert (d.finding, d.decision, d.reviewer) == (good["finding"], "ignore", "wang")
    bad = [{**good, "decision": "delete"}, {**good, "reviewer": "", "finding": ""}]
    file.write_text(json.dumps({"robot": "pagescan", "rows": bad}), encoding="utf-8")
    with pytest.raises(InvalidReview) as caught:
        read_finding_decisions(file)
    said = str(caught.value)
    assert "decision 1, decision: unknown decision 'delete'" in said
    assert "decision 2, reviewer" in said and "decision 2, finding" in said
