"""The page vocabulary every robot's scenario shares: lists of rows and declared actions.

A list (``config.ListSpec``) is rows, fields read inside each row, and one way to more rows:
a link followed, a button that turns the page in place, or a "load more" button. A list
whose row selector matches nothing, on a page that does not show the list's empty marker,
stops the run (``ScenarioUnreadable``): a wrong selector never reads as "nothing to do".

An action (``config.PageAction``) is a few steps as a person would do them (click, wait for a
modal, choose, fill, confirm) and how its result shows: a success sign, or an error whose
text says whether the record changed under us. The HTTP status does not matter: shops
answer a refusal with 200 and a toast as often as with 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from robots.config import ListSpec, PageAction, Step
from robots.engine.fields import FIELDS_JS, READ_JS, FieldReader
from robots.errors import PageError, ScenarioUnreadable, SessionExpired, StaleRecord
from robots.runtime.browser import VISIBLE_JS, press

MAX_PAGES = 10_000  # a pager that never ends is a broken pager

# every row of ``row`` with each field read inside it: [{name: [text|attribute, ...],
# "@label:" + name: [label, ...] for a field with a label}] (fields.FIELDS_JS, under the row)
ROWS_JS = (
    "([row, specs]) => { const read = "
    + FIELDS_JS.strip()
    + "; return Array.from(document.querySelectorAll(row)).map((r) => read(r, specs)); }"
)
# the pager control if a person could use it now: its href for a link, true for a button
PAGER_JS = """
(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const style = getComputedStyle(el);
  if (el.disabled || el.getAttribute("aria-disabled") === "true"
      || el.classList.contains("disabled") || style.display === "none"
      || style.visibility === "hidden") return null;
  return el.href || true;
}
"""
_SIGNATURE_JS = """
(row) => Array.from(document.querySelectorAll(row)).map((r) => r.textContent).join("\\u0001")
"""
_CHANGED_JS = """
([row, before]) => Array.from(document.querySelectorAll(row))
  .map((r) => r.textContent).join("\\u0001") !== before
"""
_GREW_JS = "([row, n]) => document.querySelectorAll(row).length > n"
_PRESENT_JS = "(selector) => document.querySelector(selector) !== null"


def page_url(base: str, path: str, **values: Any) -> str:
    """``path`` on the shop's address ``base``, each ``{name}`` filled with ``values``, quoted
    (an id with a slash or a space stays one path segment)."""
    filled = path.format(**{k: quote(str(v), safe="") for k, v in values.items()})
    return urljoin(base, filled)


@dataclass
class Listed:
    """What a list showed: the rows' raw fields and the pages it took."""

    rows: list[dict[str, list[str]]]
    pages: int


async def read_list(
    page: Page,
    spec: ListSpec,
    reader: FieldReader,
    *,
    url: str,
    goto: Callable[[str], Awaitable[None]],
    timeout_ms: float | None = None,
    may_be_empty: bool = False,
) -> Listed:
    """Every row of the list at ``url``, through its pager to the end. ``may_be_empty``: one
    of many lists (a category), which may hold nothing; the caller checks the whole."""
    await goto(url)
    specs = reader.js_specs
    if not await page.evaluate(ROWS_JS, [spec.row, {}]):
        if may_be_empty:
            return Listed([], 1)
        # no row on the first page: an empty list shows its marker; anything else means the
        # row selector does not fit the page (never "nothing to do")
        if spec.empty and await page.evaluate(_PRESENT_JS, spec.empty):
            return Listed([], 1)
        marker = (
            f"nor its empty marker list.empty {spec.empty!r}"
            if spec.empty
            else "and the scenario names no list.empty marker for an empty list"
        )
        raise ScenarioUnreadable(
            f"the scenario's list.row selector {spec.row!r} matched nothing on {page.url}, "
            f"{marker}; fix the scenario (robots scenario probe shows what the page has)"
        )
    rows: list[dict[str, list[str]]] = []
    pages, seen = 1, {url}
    while True:
        if spec.load_more is None:
            rows += await page.evaluate(ROWS_JS, [spec.row, specs])
        if pages >= MAX_PAGES:
            raise PageError(f"the list at {url} has more than {MAX_PAGES} pages", url=url)
        pager = spec.next_page or spec.next_button or spec.load_more
        found = await page.evaluate(PAGER_JS, pager) if pager else None
        if not found:
            break
        if spec.next_page:
            href = str(found) if isinstance(found, str) else None
            if href is None or href in seen:
                break
            seen.add(href)
            await goto(href)
        elif spec.next_button:
            before = await page.evaluate(_SIGNATURE_JS, spec.row)
            await press(page, spec.next_button)
            await _until(page, _CHANGED_JS, [spec.row, before], timeout_ms, spec.next_button)
        else:
            assert spec.load_more is not None
            count = len(await page.evaluate(ROWS_JS, [spec.row, {}]))
            await press(page, spec.load_more)
            await _until(page, _GREW_JS, [spec.row, count], timeout_ms, spec.load_more)
        pages += 1
    if spec.load_more is not None:
        rows = await page.evaluate(ROWS_JS, [spec.row, specs])
    return Listed(rows, pages)


async def _until(page: Page, js: str, arg: Any, timeout_ms: float | None, control: str) -> None:
    try:
        await page.wait_for_function(js, arg=arg, timeout=timeout_ms)
    except PlaywrightError as exc:
        raise PageError(
            f"pressed {control!r} and the list did not change: {str(exc).splitlines()[0]}",
            url=page.url,
        ) from None


# tick the box ``pick`` in the rows at ``indices`` and untick it everywhere else (a page that
# remembers earlier ticks must not carry them into a batch); the number of rows ticked
_TICK_JS = """
([row, pick, indices]) => {
  const wanted = new Set(indices);
  let ticked = 0;
  Array.from(document.querySelectorAll(row)).forEach((r, i) => {
    const box = r.querySelector(pick);
    if (!box || box.disabled) return;
    if (box.checked !== wanted.has(i)) box.click();
    if (box.checked && wanted.has(i)) ticked++;
  });
  return ticked;
}
"""


async def read_rows(page: Page, spec: ListSpec, reader: FieldReader) -> list[dict[str, list[str]]]:
    """The rows the page shows now, each field read inside its row (no pager)."""
    rows: list[dict[str, list[str]]] = await page.evaluate(ROWS_JS, [spec.row, reader.js_specs])
    return rows


async def tick_rows(page: Page, row: str, pick: str, indices: list[int]) -> int:
    """Tick ``pick`` (a checkbox inside each row) in exactly the rows at ``indices``, by
    clicking it as a person would; returns how many of those rows are ticked."""
    return int(await page.evaluate(_TICK_JS, [row, pick, indices]))


# -- actions ---------------------------------------------------------------------------------
async def do_step(page: Page, step: Step) -> None:
    """One declared step, as a person would do it."""
    verb, target = step.verb, step.target
    if verb == "click":
        await press(page, target)
    elif verb == "wait":
        await page.locator(target).first.wait_for(state="visible")
    elif verb == "wait_gone":
        await page.locator(target).first.wait_for(state="hidden")
    elif verb == "wait_text":
        await page.get_by_text(target).first.wait_for(state="visible")
    elif verb == "choose":
        option = step.option or ""
        try:
            await page.select_option(target, label=option, timeout=2000)
        except PlaywrightError:
            await page.select_option(target, value=option)
    elif verb == "check":
        await page.check(target)
    elif verb == "fill":
        await page.fill(target, step.text or "")


@dataclass(frozen=True)
class ActionResult:
    """How an action ended, as the page showed it."""

    message: str  # the success or error text shown
    read: dict[str, list[str]] | None = None  # ``then_read``'s fields, read as the sign showed


# the texts of the first visible error and success sign (null: none visible), and the fields
# of ``read`` (READ_JS's specs) off the same page, in one round trip
_SHOWN_JS = (
    """
([error, success, read]) => {
  const visible = """
    + VISIBLE_JS
    + """;
  const first = (selector) => {
    if (selector === null) return null;
    const el = Array.from(document.querySelectorAll(selector)).find(visible);
    return el === undefined ? null : el.textContent ?? "";
  };
  const error_ = first(error);
  return {error: error_, success: error_ === null ? first(success) : null,
          read: read === null ? null : ("""
    + READ_JS.strip()
    + """)(read)};
}
"""
)


async def _shown(page: Page, arg: list[Any]) -> dict[str, Any]:
    try:
        seen: dict[str, Any] = await page.evaluate(_SHOWN_JS, arg)
    except PlaywrightError:  # navigated between the sign and this read: the locators decide
        return {"error": None, "success": None, "read": None}
    return seen


async def perform(
    page: Page,
    action: PageAction,
    *,
    what: str,
    item_id: str,
    login_path: str,
    timeout_ms: float | None = None,
    then_read: dict[str, Any] | None = None,
) -> ActionResult:
    """Do ``action``'s steps, then wait for its success sign or its error; ``then_read``
    (``FieldReader.js_specs``) is read off the page in the same round trip as the sign.

    An error whose text holds one of ``stale_text`` raises ``StaleRecord`` (a person looks);
    any other error, no sign at all, or the login page raises a system exception, which the
    acting protocol settles by reading the record (never by pressing again blindly).
    """
    steps = list(action.steps)
    while steps:
        step = steps.pop(0)
        try:
            if step.verb == "wait" and steps and steps[0].verb == "click":
                # a modal's wait and the click in it: one round trip when it is already open
                modal, step = step.target, steps.pop(0)
                await press(page, step.target, after_shown=modal)
            else:
                await do_step(page, step)
        except PlaywrightError as exc:
            raise PageError(
                f"{what}: step {step.verb} {step.target!r} failed: {str(exc).splitlines()[0]}",
                url=page.url,
                item_id=item_id,
            ) from None
    # locators wait through the navigation a form's submit causes; a function would not
    # (a hidden toast container is no sign: only what a person could see counts)
    error = page.locator(action.error).filter(visible=True).first
    signs = page.locator(action.error)
    if action.success:
        signs = signs.or_(page.locator(action.success))
    if action.success_text:
        signs = signs.or_(page.get_by_text(action.success_text))
    try:
        shown_sign = signs.filter(visible=True).first
        await shown_sign.wait_for(state="visible", timeout=timeout_ms)
        seen = await _shown(page, [action.error, action.success, then_read])
        read = seen["read"]
        if seen["error"] is not None or seen["success"] is not None:
            failed, shown = seen["error"] is not None, seen["error"] or seen["success"]
        else:  # a sign only Playwright's own selectors tell (success_text), or the page moved
            failed = await error.count() > 0
            shown = await (error if failed else shown_sign).text_content()
    except PlaywrightError as exc:
        if page.url.split("?")[0].endswith(login_path):
            raise SessionExpired(
                f"{what}: the shop sent us to its login page", url=page.url
            ) from None
        sign = action.success or repr(action.success_text)
        raise PageError(
            f"{what}: neither the success sign {sign} nor the error {action.error!r} showed "
            f"({str(exc).splitlines()[0]})",
            url=page.url,
            item_id=item_id,
        ) from None
    message = " ".join((shown or "").split())
    if failed:
        if any(word in message for word in action.stale_text):
            raise StaleRecord(f"{what}: the shop refused: {message}", item_id=item_id)
        raise PageError(f"{what}: the shop answered: {message}", url=page.url, item_id=item_id)
    return ActionResult(message, read)
