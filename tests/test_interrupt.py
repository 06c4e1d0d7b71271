"""Ctrl-C is SIGTERM: a person stopping a run at a terminal gets what the scheduler gets. The
item in hand finishes (an approval pressed is verified and recorded), the run row closes as
stopped, the workbook is written, nothing is left acting, and the command exits 130 saying
so. Pressed on a real pseudo-terminal: the tty sends SIGINT to the whole foreground process
group, the browser's driver included."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import time

import pytest
from conftest import Workspace, approvals, expected_approvals, robot_env, robots_cmd

pytestmark = pytest.mark.browser


def stall_every_approval(ws: Workspace, seconds: float) -> None:
    """Every approval lands, then its answer takes ``seconds``: Ctrl-C finds items in hand."""
    for rid in expected_approvals(ws):
        ws.sandbox.control(
            "faults", path_prefix=f"/refunds/{rid}/approve", count=1, after=True, delay_s=seconds
        )


@pytest.mark.refunds(60)
def test_ctrl_c_on_a_terminal_stops_like_sigterm(workspace: Workspace) -> None:
    stall_every_approval(workspace, 1.0)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the robot, on the pseudo-terminal, in its foreground group
        args = robots_cmd("run", "refunds", "-w", str(workspace.root))
        os.execve(args[0], args, {**robot_env(), "COLUMNS": "120", "TERM": "xterm"})
    output = b""
    deadline = time.monotonic() + 300
    pressed = False
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):  # the child closed the terminal
                output += os.read(fd, 65536)
        if not pressed and len(approvals(workspace)) >= 3:
            os.write(fd, b"\x03")  # Ctrl-C, as a person types it
            pressed = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, 9)
        pytest.fail(f"the run did not end after Ctrl-C:\n{output.decode(errors='replace')}")
    with contextlib.suppress(OSError):
        while select.select([fd], [], [], 0.2)[0]:
            output += os.read(fd, 65536)
    os.close(fd)
    text = output.decode(errors="replace")
    assert pressed, text
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "Ctrl-C" in text and "Traceback" not in text, text

    [run] = workspace.runs()
    summary = json.loads(run["summary"])
    assert run["ended_at"] is not None and summary.get("stopped") is True, dict(run)
    assert summary["exit_code"] == 130
    states = {r["state"] for r in workspace.ledger_rows()}
    assert "acting" not in states and "pending" in states, states  # the rest waits
    assert workspace.reports(), "the run's workbook"
    approved = approvals(workspace)
    assert max(approved.values()) == 1 and set(approved) < expected_approvals(workspace)
    done = {r["item_key"].split("@")[0] for r in workspace.ledger_rows() if r["state"] == "done"}
    assert set(approved) == done  # every approval pressed was verified and recorded

    # the next run finishes the work: the ground truth, each refund once
    subprocess.run(
        robots_cmd("run", "refunds", "-w", str(workspace.root)),
        capture_output=True,
        env=robot_env(),
        check=True,
        timeout=600,
    )
    approved = approvals(workspace)
    assert set(approved) == expected_approvals(workspace) and max(approved.values()) == 1
