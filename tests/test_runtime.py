"""Runtime pieces: finding Chromium, masking secrets in logs and screenshots."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import PASSWORD, USERNAME, Sandbox
from loguru import logger
from PIL import Image
from playwright.async_api import Page

from robots.config import PageAction, Step
from robots.engine.pages import perform
from robots.errors import BrowserNotFound, StaleRecord
from robots.runtime import browser
from robots.runtime.logs import run_logging
from robots.runtime.redaction import Redactor


def test_chromium_from_env_must_be_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOTS_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(BrowserNotFound, match="ROBOTS_CHROMIUM points at"):
        browser.find_chromium(None, None)


def test_no_chromium_names_the_apt_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBOTS_CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(browser, "HEADLESS_SHELL", tmp_path / "chromium-headless-shell")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserNotFound, match="apt-get install chromium"):
        browser.find_chromium(None, str(tmp_path / "playwright-chromium"))
    own = tmp_path / "playwright-chromium"
    own.write_text("")
    assert browser.find_chromium(None, str(own)) == str(own)


def test_system_chromium_is_preferred_to_playwrights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBOTS_CHROMIUM", raising=False)
    assert browser.find_chromium(None, "/somewhere/else", headless=False) == "/usr/bin/chromium"


def test_headless_runs_take_debians_headless_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROBOTS_CHROMIUM", raising=False)
    # make test installs it, so a headless run here gets it
    assert browser.find_chromium(None, None) == "/usr/lib/chromium/chromium-headless-shell"
    # a shop's own setting still wins, and without the shell a headless run takes chromium
    own = tmp_path / "my-chromium"
    own.write_text("")
    own.chmod(0o755)
    assert browser.find_chromium(own, None) == str(own)
    monkeypatch.setattr(browser, "HEADLESS_SHELL", tmp_path / "absent")
    assert browser.find_chromium(None, None) == "/usr/bin/chromium"


def test_log_lines_and_exceptions_are_redacted(tmp_path: Path) -> None:
    secret = "hunter2-Very-Secret"
    with run_logging(tmp_path, Redactor([secret])):
        logger.info("password is {}", secret)
        try:
            raise ValueError(f"login with {secret} failed")
        except ValueError:
            logger.exception("boom")
    for name in ("run.log", "run.jsonl"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert secret not in text and "******" in text
    first = json.loads((tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["record"]["message"] == "password is ******"


@pytest.mark.browser
@pytest.mark.refunds(5)
def test_screenshots_mask_password_fields(sandbox: Sandbox, tmp_path: Path) -> None:
    async def shoot() -> tuple[bytes, dict[str, float]]:
        async with browser.browser_session(
            executable=None, headless=True, timeout_ms=10_000, trace=False
        ) as session:
            page = await session.browser.new_page()
            await page.goto(sandbox.url + "login")
            await page.fill("#username", USERNAME)
            await page.fill("#password", PASSWORD)
            box = await page.locator("#password").bounding_box()
            assert box is not None
            path = await browser.screenshot(page, tmp_path / "login.png")
            assert path is not None
            return Path(path).read_bytes(), box

    png, box = asyncio.run(shoot())
    image = Image.open(io.BytesIO(png)).convert("RGB")
    centre = (int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2))
    assert image.getpixel(centre) == (255, 0, 255)  # Playwright's mask colour
    assert image.getpixel((2, 2)) != (255, 0, 255)  # the rest of the page is not masked


@asynccontextmanager
async def blank_page(timeout_ms: float) -> AsyncIterator[Page]:
    """A page of a headless Chromium of our own, waiting at most ``timeout_ms`` for anything."""
    async with browser.browser_session(
        executable=None, headless=True, timeout_ms=timeout_ms, trace=False
    ) as session:
        page = await session.browser.new_page()
        page.set_default_timeout(timeout_ms)
        yield page


@pytest.mark.browser
def test_press_is_a_real_click_and_waits_when_it_must() -> None:
    page_html = """
    <button id="now" onclick="window.log.push('now:' + event.isTrusted)">now</button>
    <div style="height: 3000px"></div>
    <button id="below" onclick="window.log.push('below:' + event.isTrusted)">below</button>
    <div id="cover-me"><button id="covered" onclick="window.log.push('covered')">x</button>
    <div style="position:fixed;inset:0;background:#fff"></div></div>
    <script>
      window.log = [];
      setTimeout(() => {
        const b = document.createElement("button");
        b.id = "late"; b.textContent = "late";
        b.onclick = (e) => window.log.push("late:" + e.isTrusted);
        document.body.prepend(b);
      }, 300);
    </script>"""

    async def run() -> list[str]:
        async with blank_page(2_000) as page:
            await page.set_content(page_html)
            await page.evaluate("document.querySelector('div[style*=fixed]').remove()")
            await browser.press(page, "#now")
            await browser.press(page, "#below")
            await browser.press(page, "#late")  # not there yet: falls back and waits
            await page.evaluate(
                "document.getElementById('cover-me').insertAdjacentHTML('beforeend',"
                " '<div style=\"position:fixed;inset:0;background:#fff\"></div>')"
            )
            with pytest.raises(Exception, match="Timeout"):
                await browser.press(page, "#covered")  # covered: never clicked blindly
            return await page.evaluate("window.log")

    assert asyncio.run(run()) == ["now:true", "below:true", "late:true"]


@pytest.mark.browser
def test_a_declared_action_reads_its_sign_and_fields_in_one_go_and_falls_back_to_waiting() -> None:
    """The modal opens late (the merged wait + click falls back to waiting); a hidden error
    container is no sign; a visible error fails the action, naming its text; a sign only
    ``success_text`` tells still counts; ``then_read`` comes back from the page that showed."""
    page_html = """
    <div id="err" style="display:none">old error</div>
    <span data-field="status">PENDING</span>
    <button id="open">open</button>
    <div id="modal" style="display:none"><button id="ok">ok</button></div>
    <div id="done" style="display:none"></div>
    <script>
      document.getElementById("open").onclick = () => setTimeout(() => {
        document.getElementById("modal").style.display = "block";
      }, 300);
      document.getElementById("ok").onclick = (e) => setTimeout(() => {
        const outcome = window.outcome;
        if (outcome === "error") {
          const err = document.getElementById("err");
          err.textContent = "记录已被修改"; err.style.display = "block";
        } else {
          document.querySelector("[data-field=status]").textContent = "SUCCESS";
          const done = document.getElementById("done");
          done.textContent = "已同意退款"; done.style.display = "block";
        }
      }, 100);
    </script>"""
    steps = [Step(click="#open"), Step(wait="#modal"), Step(click="#ok")]
    by_id = PageAction(steps=steps, success="#done", error="#err")
    by_text = PageAction(steps=steps, success_text="已同意", error="#err")
    status = {"status": ["[data-field=status]", None, False]}

    async def run() -> list[object]:
        async with blank_page(5_000) as page:
            out: list[object] = []
            for action, outcome in ((by_id, "ok"), (by_text, "ok"), (by_id, "error")):
                await page.set_content(page_html)
                await page.evaluate(f"window.outcome = {outcome!r}")
                try:
                    done = await perform(
                        page,
                        action,
                        what="approving R1",
                        item_id="R1",
                        login_path="/login",
                        then_read=status,
                    )
                    out.append((done.message, done.read))
                except StaleRecord as exc:
                    out.append(str(exc))
            return out

    assert asyncio.run(run()) == [
        ("已同意退款", {"status": ["SUCCESS"]}),
        ("已同意退款", {"status": ["SUCCESS"]}),
        "approving R1: the shop refused: 记录已被修改",
    ]
