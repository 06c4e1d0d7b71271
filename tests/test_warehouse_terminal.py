"""The warehouse terminal driven for real: a Tk program on Xvfb, pyautogui at the keyboard."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import PASSWORD, USERNAME, Sandbox, robots_cmd

from robots.errors import CredentialError
from robots.returns.desktop import Desktop, DesktopError
from robots.returns.scenario import TerminalSpec
from robots.returns.terminal import WarehouseTerminal
from robots.runtime.credentials import Credential

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


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DesktopError, match="no X display"):
        Desktop(None)
