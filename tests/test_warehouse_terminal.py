"""The warehouse terminal driven for real: a Tk program on Xvfb, pyautogui at the keyboard."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import lxml.html
import openpyxl
import pytest
from conftest import PASSWORD, USERNAME, Sandbox, robots_cmd

from robots.errors import CredentialError
from robots.returns.desktop import Desktop, DesktopError
from robots.returns.scenario import TerminalSpec
from robots.returns.terminal import WarehouseTerminal
from robots.runtime.credentials import Credential
from sandbox.terminal import SEARCH_COLUMNS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parcels(40),
    # python-xlib 0.33 leaves ~/.Xauthority open per connection and pyscreeze leaves the pipes
    # of its `which scrot` at import: not ours, and harmless, but pytest turns them into errors
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def terminal(sandbox: Sandbox, display: str, tmp_path: Path) -> Iterator[Desktop]:
    proc = subprocess.Popen(
        robots_cmd(
            "sandbox", "terminal", "--data", str(sandbox.data), "--export-dir", str(tmp_path)
        ),
        env={**os.environ, "DISPLAY": display},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,  # an export typed as a relative path lands here, not in the checkout
    )
    desktop = Desktop(display)
    desktop.wait_for(TerminalSpec().window, timeout_s=20)
    yield desktop
    desktop.close()
    proc.terminate()
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()


def links(sandbox: Sandbox) -> list[sqlite3.Row]:
    with sandbox.db() as conn:
        return conn.execute("SELECT * FROM parcel_links ORDER BY link_id").fetchall()


def wait_for_links(sandbox: Sandbox, n: int) -> list[sqlite3.Row]:
    deadline = time.monotonic() + 10
    while len(found := links(sandbox)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_login_export_and_link_through_the_desktop(
    terminal: Desktop, sandbox: Sandbox, tmp_path: Path
) -> None:
    t = WarehouseTerminal(terminal, TerminalSpec())
    t.ensure_logged_in(Credential("warehouse", USERNAME, PASSWORD))
    exported = t.export(tmp_path / "exports" / "parcels.xlsx")
    sheet = openpyxl.load_workbook(exported).active
    rows = list(sheet.iter_rows(values_only=True))
    with sandbox.db() as conn:
        open_ids = [
            r[0]
            for r in conn.execute(
                "SELECT parcel_id FROM parcels WHERE linked_to IS NULL "
                "ORDER BY received_at, parcel_id"
            )
        ]
        target = conn.execute(
            "SELECT refund_id FROM refunds WHERE refund_id LIKE 'RF3%'"
        ).fetchone()[0]
    assert rows[0][:3] == ("包裹号", "运单号", "快递公司")
    assert [r[0] for r in rows[1:]] == open_ids and len(open_ids) == 40

    t.link(open_ids[0], target)
    (row,) = wait_for_links(sandbox, 1)
    assert (row["parcel_id"], row["target"], row["actor"]) == (open_ids[0], target, USERNAME)
    t.link(open_ids[0], target)  # the terminal refuses a second link of the same parcel
    t.link(open_ids[1], target)
    found = wait_for_links(sandbox, 2)
    assert [(r["parcel_id"], r["target"]) for r in found] == [
        (open_ids[0], target),
        (open_ids[1], target),
    ]
    shot = terminal.screenshot(tmp_path / "desktop.png")
    assert shot and Path(shot).stat().st_size > 0


@pytest.mark.parametrize("slip", ["first key", "enter"])
def test_an_export_whose_keys_were_lost_is_tried_again(
    terminal: Desktop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slip: str
) -> None:
    """A program still moving focus into its new dialog can lose the first keys typed (the
    Tk terminal did, on a loaded machine: it wrote the export to a relative path). The
    file is the proof: the export is tried again, its dialog closed first; out of tries,
    the error names the path and the tries."""
    t = WarehouseTerminal(terminal, TerminalSpec(timeout_s=2))
    t.ensure_logged_in(Credential("warehouse", USERNAME, PASSWORD))
    typed, pressed = terminal.type, terminal.keys
    lost: list[str] = []

    def slipping_type(text: str) -> None:
        if slip == "first key" and len(lost) < 1:
            lost.append(text[0])
            text = text[1:]  # "/tmp/…" arrives as "tmp/…": a file beside the terminal
        typed(text)

    def slipping_keys(combo: str) -> None:
        if slip == "enter" and combo == "enter" and terminal.find("导出无名件") and not lost:
            lost.append(combo)  # the dialog stays open with the path typed
            return
        pressed(combo)

    monkeypatch.setattr(terminal, "type", slipping_type)
    monkeypatch.setattr(terminal, "keys", slipping_keys)
    path = tmp_path / "out" / "parcels.xlsx"
    assert t.export(path) == path.resolve() and path.is_file() and lost
    if slip == "first key":  # the first try wrote where a lost "/" made it: beside the program
        beside = tmp_path / str(path.resolve())[1:]  # (a loaded terminal may write it late)
        deadline = time.monotonic() + 120
        while not beside.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert beside.is_file()
    assert openpyxl.load_workbook(path).active.cell(1, 1).value == "包裹号"
    assert terminal.find("导出无名件") is None

    monkeypatch.setattr(terminal, "type", lambda text: typed(text[1:]))
    with pytest.raises(DesktopError, match=r"wrote no export at .*parcels\.xlsx \(3 tries\)"):
        t.export(path)


def test_a_wrong_password_is_a_credential_error(terminal: Desktop) -> None:
    t = WarehouseTerminal(terminal, TerminalSpec(timeout_s=2))
    with pytest.raises(CredentialError, match="refused credential 'warehouse'"):
        t.ensure_logged_in(Credential("warehouse", USERNAME, "wrong-password"))


def test_a_terminal_that_is_not_running_is_named(display: str) -> None:
    desktop = Desktop(display)
    try:
        with pytest.raises(DesktopError, match="the warehouse terminal is not running on DISPLAY="):
            WarehouseTerminal(desktop, TerminalSpec()).require_running()
    finally:
        desktop.close()


HOLD_ELSEWHERE = """
import sys
from robots.returns.desktop import Desktop, DesktopError
desktop = Desktop(sys.argv[1])
try:
    with desktop.held(timeout_s=0.3):
        print("held")
except DesktopError as exc:
    print(exc)
"""


def test_one_process_at_a_time_types_on_a_display(display: str) -> None:
    """A run exporting and a cluster worker linking on one display take turns."""

    def other_process() -> str:
        done = subprocess.run(
            [sys.executable, "-c", HOLD_ELSEWHERE, display],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    desktop = Desktop(display)
    try:
        with desktop.held():
            busy = other_process()
        assert busy.startswith(f"DISPLAY={display} stayed in another process's hands"), busy
        assert other_process() == "held"  # released when the step ends
    finally:
        desktop.close()


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DesktopError, match="no X display"):
        Desktop(None)


def back_office_search(sandbox: Sandbox, **query: str) -> tuple[int, list[list[str]]]:
    """Every row of the back office's /search for ``query``, following 下一页 to the end."""
    with httpx.Client(base_url=sandbox.url, timeout=30, follow_redirects=True) as web:
        form = lxml.html.fromstring(web.get("/login").text)
        token = form.xpath("//input[@name='csrf_token']/@value")[0]
        web.post(
            "/login", data={"username": USERNAME, "password": PASSWORD, "csrf_token": token}
        ).raise_for_status()
        # the terminal's columns, which the back office's result rows carry as data-* values
        keys = [key for key, _, _ in SEARCH_COLUMNS]
        rows: list[list[str]] = []
        page = web.get("/search", params=query)
        total = 0
        while True:
            doc = lxml.html.fromstring(page.text)
            total = int(doc.xpath("string(//span[@id='total'])") or 0)
            for tr in doc.xpath("//tr[@class='order']"):
                rows.append([tr.get(f"data-{key.replace('_', '-')}") for key in keys])
            more = doc.xpath("//a[@class='next']/@href")
            if not more:
                return total, rows
            page = web.get(more[0])


def terminal_search(
    desktop: Desktop, export: Path, q: str, sku: str = "", since: str = "", fuzzy: bool = False
) -> tuple[str, list[list[str]]]:
    """查找订单 typed on the terminal, then Ctrl+S: the export's sheet name and its rows."""
    main = desktop.wait_for("仓库管理终端", "无名件")
    assert main is not None
    desktop.point_into(main)
    desktop.keys("ctrl+f")
    dialog = desktop.wait_for("查找订单")
    assert dialog is not None
    desktop.point_into(dialog)
    desktop.type(q)
    desktop.keys("tab")
    desktop.type(sku)
    desktop.keys("tab")
    desktop.type(since)
    desktop.keys("tab")
    if fuzzy:
        desktop.keys("space")
    desktop.keys("enter")
    export.unlink(missing_ok=True)
    desktop.keys("ctrl+s")
    deadline = time.monotonic() + 300  # a loaded machine is slow; a terminal that never
    while not export.is_file():  # writes the file still fails here
        assert time.monotonic() < deadline, "the terminal wrote no search export"
        time.sleep(0.05)
    desktop.keys("escape")
    desktop.wait_for("查找订单", gone=True)
    sheet = openpyxl.load_workbook(export).active
    assert sheet is not None
    header, *body = list(sheet.iter_rows(values_only=True))
    assert header[0] == "订单号"
    return sheet.title, [["" if v is None else str(v) for v in row] for row in body]


@pytest.mark.parcels(60)
def test_the_terminal_finds_orders_as_the_back_office_does(
    terminal: Desktop, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Both sides of the sandbox answer a search from the same data alike: the same orders in
    the same order, page after page, whichever way the keyword was typed."""
    WarehouseTerminal(terminal, TerminalSpec()).ensure_logged_in(
        Credential("warehouse", USERNAME, PASSWORD)
    )
    with sandbox.db() as conn:
        # a lucky tail, as real shops have: a third of the buyers' phones end in 6888
        conn.execute("UPDATE buyers SET phone = substr(phone, 1, 7) || '6888' WHERE rowid % 3 = 0")
        conn.commit()
        waybill = conn.execute(
            "SELECT return_sid FROM refunds WHERE return_sid IS NOT NULL ORDER BY refund_id"
        ).fetchone()[0]
        sku, nick = conn.execute(
            "SELECT l.sku, l.buyer_nick FROM buyers b JOIN order_lines l USING (buyer_nick) "
            "WHERE b.phone LIKE '%6888' GROUP BY l.sku ORDER BY count(*) DESC, 1"
        ).fetchone()
    tail = "6888"
    spaced = f"{waybill[:3].lower()} {waybill[3:7]}-{waybill[7:]}"
    misread = waybill[:-1] + ("1" if waybill[-1] != "1" else "2")
    queries = [
        {"q": spaced},
        {"q": misread},
        {"q": misread, "fuzzy": True},
        {"q": tail},
        {"q": tail, "sku": sku, "since": "2026-01-01"},
        {"q": nick},
    ]
    export = tmp_path / "查找订单.xlsx"
    linked = {"0": "否", "1": "是"}
    for query in queries:
        sheet, on_desktop = terminal_search(terminal, export, **query)  # type: ignore[arg-type]
        web_query = {k: ("1" if v is True else v) for k, v in query.items()}
        total, on_web = back_office_search(sandbox, **web_query)  # type: ignore[arg-type]
        on_web = [[*row[:-1], linked[row[-1]]] for row in on_web]
        assert sheet == "查找订单"
        assert on_desktop == on_web and len(on_web) == total, query
    # the queries are worth asking: one finds nothing until fuzzy, one pages
    assert terminal_search(terminal, export, misread)[1] == []
    assert back_office_search(sandbox, q=tail)[0] > 50
