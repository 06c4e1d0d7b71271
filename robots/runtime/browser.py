"""A logged-in Chromium: found on the system, logged in once, shared by every work context.

Login happens in a context of its own that is never traced, so the password cannot reach a
trace; work contexts start from the saved session (cookies) and trace an item's retries
(``engine.run.Lane``), kept only when the item fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import pyotp
from loguru import logger
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from robots.errors import BrowserNotFound, CredentialError, PageError, SessionExpired
from robots.runtime.credentials import Credential

T = TypeVar("T")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # a new frame per navigation and the back-forward cache cost ~10 ms a page here; robots
    # never go back
    "--disable-features=RenderDocument,BackForwardCache",
]
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
# Debian's build of the old headless mode (what Playwright itself runs headless): measured
# at about a third less CPU a decision than full Chromium running headless, on a local shop
# and on one 150 ms away (bench/refunds.py). The binary itself, not /usr/bin's wrapper
# script: the wrapper does not exec, so killing the pid a driver knows would leave the
# browser running
HEADLESS_SHELL = Path("/usr/lib/chromium/chromium-headless-shell")
# A tab that has navigated hundreds of times gets slow (measured: 104 ms a page for the first
# hundred, 372 ms by the sixth); a fresh tab every 100 navigations stays flat.
PAGE_RECYCLE_EVERY = 50


def find_chromium(
    configured: Path | None, playwright_default: str | None, *, headless: bool = True
) -> str:
    """ROBOTS_CHROMIUM, then the configured path, then Debian's headless shell (headless
    only), /usr/bin/chromium, then Playwright's."""
    env = os.environ.get("ROBOTS_CHROMIUM")
    for candidate, source in ((env, "ROBOTS_CHROMIUM"), (configured, "browser.executable")):
        if candidate:
            path = Path(candidate)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise BrowserNotFound(f"{source} points at {path}, which is not an executable")
            return str(path)
    if headless and HEADLESS_SHELL.is_file():
        return str(HEADLESS_SHELL)
    if SYSTEM_CHROMIUM.is_file():
        return str(SYSTEM_CHROMIUM)
    found = shutil.which("chromium")
    if found:
        return found
    if playwright_default and Path(playwright_default).is_file():
        return playwright_default
    raise BrowserNotFound(
        "no Chromium found: install Debian's packages with "
        "`apt-get install chromium chromium-headless-shell` "
        "(or set ROBOTS_CHROMIUM to a Chromium binary)"
    )


@dataclass(frozen=True)
class LoginForm:
    """Where the shop's login form is: a path and four selectors."""

    url: str
    username: str
    password: str
    submit: str
    logged_in: str
    error: str
    otp: str | None = None  # the one-time-code field of a two-factor login
    otp_submit: str = "button[type=submit]"

    @classmethod
    def at(cls, base_url: str, page: Any) -> LoginForm:
        """The form described by a scenario's ``[login]`` table, on the shop at ``base_url``."""
        return cls(
            urljoin(base_url, page.path),
            page.username,
            page.password,
            page.submit,
            page.logged_in,
            page.error,
            page.otp,
            page.otp_submit,
        )


class BrowserSession:
    """One browser, one login, many contexts."""

    def __init__(self, browser: Browser, *, timeout_ms: int, trace: bool) -> None:
        self.browser = browser
        self.timeout_ms = timeout_ms
        self.trace = trace
        self._storage_state: Any = None
        self._contexts: list[BrowserContext] = []
        self._login_lock = asyncio.Lock()
        self.logins = 0  # how many times we logged in; a step remembers it before it starts
        self._last_totp_step: dict[str, int] = {}

    async def login(self, form: LoginForm, credential: Credential) -> None:
        """Log in once in an untraced context and keep the session for the work contexts."""
        context = await self.browser.new_context(locale="zh-CN")
        context.set_default_timeout(self.timeout_ms)
        try:
            page = await context.new_page()
            response = await page.goto(form.url)
            if response is not None and response.status >= 500:
                raise PageError(f"login page answered {response.status}", url=form.url)
            await page.fill(form.username, credential.username)
            await page.fill(form.password, credential.password)
            await page.click(form.submit)
            outcomes = [form.logged_in, form.error, *([form.otp] if form.otp else [])]
            await page.wait_for_selector(", ".join(outcomes))
            if form.otp and await page.locator(form.otp).count():
                await self._one_time_code(page, form, credential)
            if not await page.locator(form.logged_in).count():
                message = await page.locator(form.error).first.text_content() or "login refused"
                raise CredentialError(
                    f"the shop refused credential {credential.name!r}: {message.strip()}",
                    credential=credential.name,
                )
            self._storage_state = await context.storage_state()
            self.logins += 1
            logger.info("logged in to {} as {}", form.url, credential.username)
        finally:
            await context.close()

    async def _one_time_code(self, page: Page, form: LoginForm, credential: Credential) -> None:
        """Second factor: the current TOTP code, never one already used (shops refuse replays)."""
        assert form.otp is not None
        if not credential.totp:
            raise CredentialError(
                f"the shop asks for a one-time code but credential {credential.name!r} has no "
                f"TOTP secret: add one with `robots vault set {credential.name} --totp`",
                credential=credential.name,
            )
        totp = pyotp.TOTP(credential.totp)
        try:
            step = totp.timecode(datetime.now(UTC))
            totp.now()
        except ValueError as exc:  # binascii.Error included
            raise CredentialError(
                f"the TOTP secret of credential {credential.name!r} is not usable: {exc}",
                credential=credential.name,
            ) from None
        for attempt in (1, 2):
            if step <= self._last_totp_step.get(credential.name, -1):
                wait = totp.interval - time.time() % totp.interval + 0.2
                logger.info("waiting {:.0f} s for a fresh one-time code", wait)
                await asyncio.sleep(wait)
            now = datetime.now(UTC)
            step = self._last_totp_step[credential.name] = totp.timecode(now)
            await page.fill(form.otp, totp.at(now))
            await page.click(form.otp_submit)
            await page.wait_for_selector(f"{form.logged_in}, {form.error}")
            if attempt == 1 and not await page.locator(form.logged_in).count():
                # most often a code another process used a moment ago: the next one will do
                logger.info("the shop refused the one-time code; trying the next one")
                continue
            return

    @property
    def cookies(self) -> list[dict[str, Any]]:
        """The login's cookies (none before it), for a browser of another kind to carry."""
        return list(self._storage_state["cookies"]) if self._storage_state else []

    async def refresh_login(self, form: LoginForm, credential: Credential, *, seen: int) -> None:
        """Log in again after the shop expired the session; live contexts get the new cookies.

        ``seen`` is ``logins`` as the failed step saw it: when several pages find the session
        expired at once, the first logs in and the others only retry.
        """
        async with self._login_lock:
            if self.logins != seen:
                return
            await self.login(form, credential)
            for context in self._contexts:
                await context.add_cookies(self._storage_state["cookies"])

    async def new_context(self, *, anonymous: bool = False) -> BrowserContext:
        """A work context with the login's cookies, or without any when ``anonymous``."""
        if self._storage_state is None and not anonymous:
            raise RuntimeError("log in before opening work contexts")
        context = await self.browser.new_context(storage_state=self._storage_state, locale="zh-CN")
        context.set_default_timeout(self.timeout_ms)
        context.set_default_navigation_timeout(self.timeout_ms)
        self._contexts.append(context)
        return context

    async def close_context(self, context: BrowserContext) -> None:
        await context.close()
        self._contexts.remove(context)


@asynccontextmanager
async def browser_session(
    *,
    executable: Path | None,
    headless: bool,
    timeout_ms: int,
    trace: bool,
    args: Sequence[str] = (),
) -> AsyncIterator[BrowserSession]:
    """Chromium launched with ``CHROMIUM_FLAGS`` and a robot's own ``args``."""
    async with AsyncExitStack() as stack:
        with _driver_in_a_session_of_its_own():
            pw = await stack.enter_async_context(async_playwright())
        path = find_chromium(executable, pw.chromium.executable_path, headless=headless)
        browser = await pw.chromium.launch(
            executable_path=path, headless=headless, args=[*CHROMIUM_FLAGS, *args]
        )
        logger.debug("launched {} (version {})", path, browser.version)
        try:
            yield BrowserSession(browser, timeout_ms=timeout_ms, trace=trace)
        finally:
            await browser.close()


@contextmanager
def _driver_in_a_session_of_its_own() -> Iterator[None]:
    """Playwright starts its driver (node) in our process group, so Ctrl-C at a terminal
    reaches it too, and it closes the browser under the item in hand. Started in a session
    of its own, only this process gets the SIGINT and stops as for SIGTERM
    (``runtime.stopping``). The driver still ends with us: it exits when its stdin, our
    pipe, closes (SIGKILL included). Chromium is in a group of its own already."""
    spawn = asyncio.create_subprocess_exec

    async def in_a_new_session(*args: Any, **kwargs: Any) -> Any:
        return await spawn(*args, **{"start_new_session": True, **kwargs})

    asyncio.create_subprocess_exec = in_a_new_session
    try:
        yield
    finally:
        asyncio.create_subprocess_exec = spawn


# Whether a person could see an element (Playwright's "visible": a box that is not empty,
# not hidden by display or visibility), as a JavaScript function for page scripts to embed.
VISIBLE_JS = """(el) => {
  if (!el.checkVisibility({visibilityProperty: true})) return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}"""

# Our own actionability check in one round trip: the element exists, is in view, visible,
# enabled, and is what a mouse at its centre would hit. Returns that centre, or null; with
# ``shown`` also null unless the first element ``shown`` matches is visible (a "wait" step
# that has nothing left to wait for, checked in the same round trip).
_AIM_JS = (
    """
([selector, shown]) => {
  const visible = """
    + VISIBLE_JS
    + """;
  if (shown !== null) {
    const s = document.querySelector(shown);
    if (s === null || !visible(s)) return null;
  }
  const el = document.querySelector(selector);
  if (el === null || el.disabled) return null;
  let r = el.getBoundingClientRect();
  if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
    el.scrollIntoView({block: "center", inline: "center"});
    r = el.getBoundingClientRect();
  }
  const style = getComputedStyle(el);
  if (r.width === 0 || r.height === 0 || style.visibility !== "visible") return null;
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  return hit !== null && (hit === el || el.contains(hit)) ? [x, y] : null;
}
"""
)


async def recycled(page: Page, items_done: int) -> Page:
    """The same tab, or a fresh one in the same context every ``PAGE_RECYCLE_EVERY`` items."""
    if items_done % PAGE_RECYCLE_EVERY or page.is_closed():
        return page if not page.is_closed() else await page.context.new_page()
    context = page.context
    await page.close()
    return await context.new_page()


async def press(page: Page, selector: str, *, after_shown: str | None = None) -> None:
    """Click like a person: a real mouse click in the middle of the element.

    Playwright's ``click`` spends several round trips on its checks (~90 ms a click here);
    this does them in one (~18 ms). When the element is not ready yet (absent, hidden,
    covered) it falls back to ``page.click``, which waits for it. ``after_shown``: first wait
    until that element is visible (a modal), checked in the same round trip when it already is.
    """
    point = await page.evaluate(_AIM_JS, [selector, after_shown])
    if point is None:
        if after_shown is not None:
            await page.locator(after_shown).first.wait_for(state="visible")
        await page.click(selector)
        return
    await page.mouse.click(point[0], point[1])


async def goto(page: Page, url: str, *, login_path: str) -> None:
    """Navigate and turn the shop's failure pages into system exceptions."""
    response = await page.goto(url, wait_until="domcontentloaded")
    check_page(page, response.status if response else 0, url, login_path=login_path)


def check_page(page: Page, status: int, url: str, *, login_path: str) -> None:
    if status >= 500:
        raise PageError(f"{url} answered HTTP {status}", url=url)
    if page.url.split("?")[0].endswith(login_path):
        raise SessionExpired(f"{url} sent us to the login page", url=url)


async def screenshot(page: Page, path: Path) -> str | None:
    """A full-page screenshot with every password field masked; None if the page is gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        await page.screenshot(
            path=str(path), full_page=True, mask=[page.locator("input[type=password]")]
        )
    except Exception as exc:  # a crashed page cannot be photographed; the trace may still work
        logger.warning("screenshot {} failed: {}", path.name, exc)
        return None
    return str(path)
