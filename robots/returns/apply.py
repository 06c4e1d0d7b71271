"""A person's decisions on parcels the returns robot handed over, acted on exactly once.

Written by the console's 待处理 page as a decisions file (``{"robot": "returns", "rows":
[{"parcel_id", "item", "run", "decision": "link" | "dismiss", "target", "reviewer",
"note"}, …]}``) and applied by `robots apply` on it. ``link``: the parcel is linked to the
candidate the person chose, through the warehouse terminal, under the engine's acting
protocol (acting before the keys are typed, the parcel page read to verify, a killed run
settled by reading, never by typing again). Rules no reviewer can waive: the target must be
one of the candidates the robot listed for that parcel, and a parcel the page shows linked
already is never linked again. ``dismiss``: the parcel is closed as not to be linked (it
leaves the open queue; the robot's next runs skip it).
"""

from __future__ import annotations

import enum
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from loguru import logger
from openpyxl import Workbook
from openpyxl.utils.exceptions import InvalidFileException
from playwright.async_api import Page

from robots.config import Workspace
from robots.engine.item import Action, AlreadyActing, DesktopSurface, Item, Outcome, Verdict
from robots.engine.run import Lane, RunOptions, RunResult
from robots.errors import BusinessException, InvalidReview
from robots.ledger import ItemView, State
from robots.reports import workbook as book
from robots.reports.decisions import cell_text, console_rows
from robots.returns.report import QUEUE_SUGGESTIONS, SUGGESTIONS
from robots.returns.robot import ACTING, ReturnsRobot
from robots.returns.scenario import ReturnsScenario
from robots.returns.terminal import WarehouseTerminal

DECISIONS = {"link": "关联", "dismiss": "不关联"}
RESULTS = {
    "LINKED": "已按复核意见关联",
    "DISMISSED": "已记录不关联，包裹保持无名",
    "ALREADY_DONE": "此前已处理，本次未重复操作",
    "LINKED_ELSEWHERE": "包裹已被关联到其他单据，未操作",
    "NOT_A_CANDIDATE": "所选单据不是机器人列出的候选，未操作",
    "FAILED": "失败，下次应用或运行时重试",
}
RESULTS_SHEET = "应用结果"
RESULT_COLUMNS = [
    ("行号 row", 8),
    ("包裹号", 16),
    ("处理决定", 10),
    ("关联到", 20),
    ("复核人", 10),
    ("结果", 54),
    ("结果代码", 20),
    ("包裹页", 9),
]


class ApplyCount(enum.StrEnum):
    LINKED = "linked"
    DISMISSED = "dismissed"
    ALREADY_DONE = "already_done"
    LINKED_ELSEWHERE = "linked_elsewhere"
    NOT_A_CANDIDATE = "not_a_candidate"
    FAILED = "failed"


@dataclass(frozen=True)
class ParcelDecision:
    row: int
    parcel_id: str
    decision: str  # link | dismiss
    target: str  # the chosen candidate (link)
    reviewer: str
    note: str
    run_id: str


@dataclass(frozen=True)
class ParcelDecisions:
    file: Path
    rows: list[ParcelDecision]


def candidates(view: ItemView) -> list[str]:
    """The targets the robot listed for the parcel (its hand-over's top candidates)."""
    row = view.details.get("row") or {}
    return [str(c.get("target", "")) for c in row.get("top") or [] if c.get("target")]


def read_parcel_decisions(file: Path, *, item: Any) -> ParcelDecisions:
    """The decisions in ``file`` (the console's JSON, or a returns workbook's 待人工确认 /
    the queue's 无名件待人工确认 with 处理决定 and 复核人 filled in), every problem named;
    ``item(key)`` is the parcel's ledger view or None."""
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        records, where = _workbook_records(file)
    else:
        records, where = console_rows(file), (lambda n, name: f"decision {n}, {name}")
    problems: list[str] = []
    decided: list[ParcelDecision] = []
    seen: dict[str, int] = {}
    for n, cell in records:
        parcel, decision = cell.get("parcel_id", ""), cell.get("decision", "")
        if decision not in DECISIONS:
            problems.append(
                f"{where(n, 'decision')}: unknown decision {cell.get('raw', decision)!r} "
                "(link or dismiss; in a workbook 1, 2, 3 or 无)"
            )
        if not cell.get("reviewer"):
            problems.append(f"{where(n, 'reviewer')}: a decision needs the reviewer's name")
        view = item(parcel) if parcel else None
        if view is None:
            problems.append(f"{where(n, 'parcel_id')}: parcel {parcel!r} is not in the ledger")
        elif decision == "link" and cell.get("target") not in candidates(view):
            problems.append(
                f"{where(n, 'target')}: {cell.get('target')!r} is not one of the candidates the "
                f"robot listed for {parcel} ({', '.join(candidates(view)) or 'none'})"
            )
        if parcel in seen:
            problems.append(f"{where(n, 'parcel_id')}: {parcel} is also decided at {seen[parcel]}")
        seen[parcel] = n
        decided.append(
            ParcelDecision(
                n, parcel, decision, cell.get("target", ""), cell.get("reviewer", ""),
                cell.get("note", ""), cell.get("run", ""),
            )
        )  # fmt: skip
    if problems:
        raise InvalidReview(file, problems)
    return ParcelDecisions(file, decided)


WORKBOOK_SHEETS = (SUGGESTIONS, QUEUE_SUGGESTIONS)


def has_parcel_decisions(file: Path) -> bool:
    """Whether a workbook holds a returns suggestions sheet with a decision written in it."""
    try:
        records, _ = _workbook_records(file)
    except InvalidReview:
        return False
    return bool(records)


def _workbook_records(file: Path) -> tuple[list[tuple[int, dict[str, str]]], Any]:
    """The decided rows of the workbook's suggestions sheet: 1, 2, 3 → that candidate's
    number (候选N 单号), 无 → dismiss."""
    try:
        wb = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, InvalidFileException) as exc:
        raise InvalidReview(file, [f"not an .xlsx workbook ({exc})"]) from None
    try:
        name = next((n for n in WORKBOOK_SHEETS if n in wb.sheetnames), None)
        if name is None:
            raise InvalidReview(file, [f"no sheet {' or '.join(WORKBOOK_SHEETS)}"])
        rows = wb[name].iter_rows(values_only=True)
        headers = [str(h or "").strip() for h in next(rows, ())]
        missing = [h for h in ("包裹号", "处理决定", "复核人") if h not in headers]
        if missing:
            raise InvalidReview(
                file, [f"sheet '{name}', row 1: no column {', '.join(map(repr, missing))}"]
            )
        at = {h: i for i, h in enumerate(headers)}
        records: list[tuple[int, dict[str, str]]] = []
        for r, values in enumerate(rows, start=2):
            cells = {h: cell_text(values[i]) if i < len(values) else "" for h, i in at.items()}
            raw = cells.get("处理决定", "")
            if not raw:
                continue
            pick = {"1": 1, "2": 2, "3": 3}.get(raw.removesuffix(".0"))
            record = {
                "parcel_id": cells.get("包裹号", ""),
                "reviewer": cells.get("复核人", ""),
                "note": cells.get("备注", ""),
                "raw": raw,
            }
            if pick is not None:
                record |= {"decision": "link", "target": cells.get(f"候选{pick} 单号", "")}
            elif raw == "无":
                record |= {"decision": "dismiss"}
            else:
                record |= {"decision": raw}
            records.append((r, record))
    finally:
        wb.close()
    letters = {"decision": "处理决定", "reviewer": "复核人", "parcel_id": "包裹号",
               "target": "处理决定"}  # fmt: skip

    def where(row: int, field: str) -> str:
        return f"sheet '{name}', row {row}, column {letters.get(field, field)}"

    return records, where


@dataclass
class ApplyRow:
    decision: ParcelDecision
    result: str
    message: str
    link: str


class ReviewedLinks(ReturnsRobot):
    """One `robots apply` of a person's parcel decisions against one warehouse."""

    RUN_PREFIX = "apply"
    REPORT = None  # its own workbook: the results (the parcels' own stay the runs')

    def __init__(
        self,
        ws: Workspace,
        scenario: ReturnsScenario,
        scenario_file: Path,
        *,
        decisions: ParcelDecisions,
        options: RunOptions | None = None,
    ) -> None:
        super().__init__(ws, scenario, scenario_file, options)
        self.decisions = decisions
        self.rows: list[ApplyRow] = []

    def perform(self) -> RunResult:
        for name in (self.scenario.shop.credential, self.scenario.terminal.credential):
            self.credential(name)
        run = self.run

        async def work() -> None:
            try:
                links = [d for d in self.decisions.rows if d.decision == "link"]
                for d in self.decisions.rows:
                    if d.decision == "dismiss":
                        self._dismiss(d)
                if links:
                    terminal = self._open_terminal()
                    async with self.open_browser() as web:
                        await run.work(
                            links, lambda d, lane: self._link(terminal, d, lane), lane=web.lane
                        )
                        with terminal.desktop.held():
                            terminal.close_dialogs()
            finally:
                self.release_worker()

        return run.run(
            work,
            where=f"the back office at {self.bo.base}",
            report=self._write_report,
            summary={"kind": "apply", "workbook": str(self.decisions.file)},
        )

    def _review(self, d: ParcelDecision) -> dict[str, Any]:
        return {
            "decision": d.decision,
            "target": d.target,
            "reviewer": d.reviewer,
            "note": d.note,
            "file": str(self.decisions.file),
            "applied_by_run": self.run.run_id,
            "at": self.run.clock.now().isoformat(timespec="seconds"),
        }

    def _dismiss(self, d: ParcelDecision) -> None:
        ledger = self.run.ledger
        view = ledger.get(self.NAME, d.parcel_id)
        if view is None or view.state == State.DONE:
            self._result(d, "ALREADY_DONE", "")
            return
        if not ledger.close_reviewed(
            self.NAME, d.parcel_id, run_id=self.run.run_id, review=self._review(d)
        ):
            self._result(d, "ALREADY_DONE", "另一运行正在处理")
            return
        self._result(d, "DISMISSED", f"{d.reviewer} 不关联")

    async def _link(self, terminal: WarehouseTerminal, d: ParcelDecision, lane: Lane) -> None:
        run = self.run
        view = run.ledger.get(self.NAME, d.parcel_id)
        if view is None or view.state == State.DONE:
            self._result(d, "ALREADY_DONE", "")
            return
        if d.target not in candidates(view):  # checked when read; the ledger may have moved
            self._result(d, "NOT_A_CANDIDATE", d.target)
            return
        ended: list[tuple[str, str]] = []
        async with run.item(
            d.parcel_id, lane=lane, acting=ACTING, surfaces=[DesktopSurface(terminal.desktop)]
        ) as item:
            await item.attempt(
                lambda page: self._press(terminal, page, item, d, view, ended),
                f"linking {d.parcel_id}",
            )
        if ended:
            self._result(d, *ended[-1])
        elif item.outcome == Outcome.SYSTEM_EXCEPTION:
            self._result(d, "FAILED", item.message)
        else:
            self._result(d, "LINKED_ELSEWHERE", item.message)

    async def _press(
        self,
        terminal: WarehouseTerminal,
        page: Page,
        item: Item,
        d: ParcelDecision,
        view: ItemView,
        ended: list[tuple[str, str]],
    ) -> None:
        """Read the parcel page; link only a parcel it shows unlinked; verify. Safe to repeat."""
        key = d.parcel_id
        now = await self.bo.linked_to(page, key)
        verdict = item.verdict(now)  # an earlier attempt of this run may have landed
        if verdict == Verdict.LANDED:
            self._linked(item, d, now, ended)
            return
        if now:
            raise BusinessException("LINKED_ELSEWHERE", f"包裹已关联到 {now}", item_id=key)

        async def press() -> str:
            with terminal.desktop.held():
                terminal.link(key, d.target)
            return await self._verified_link(page, key, d.target)

        try:
            acted = await item.act(
                Action(f"link:{d.target}", view.fingerprint, review=self._review(d)),
                press=press,
                read_live=lambda: self.bo.linked_to(page, key),
            )
        except AlreadyActing:
            ended.append(("ALREADY_DONE", "另一运行同时已处理"))
            return
        if acted.verdict == Verdict.ELSEWHERE:
            raise BusinessException("LINKED_ELSEWHERE", f"包裹已关联到 {acted.live}", item_id=key)
        self._linked(item, d, d.target, ended)

    def _linked(
        self, item: Item, d: ParcelDecision, target: str, ended: list[tuple[str, str]]
    ) -> None:
        item.done(details={"linked_to": target, "review": self._review(d)})
        logger.info("linked {} → {} as reviewed by {}", d.parcel_id, target, d.reviewer)
        ended.append(("LINKED", f"→ {target}"))

    def _result(self, d: ParcelDecision, code: str, message: str) -> None:
        self.run.count(ApplyCount[code])
        text = f"{RESULTS[code]}：{message}" if message else RESULTS[code]
        self.rows.append(ApplyRow(d, code, text, self.bo.parcel_url(d.parcel_id)))

    def _write_report(self, result: RunResult) -> Path:
        wb = Workbook()
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.result] = counts.get(r.result, 0) + 1
        summary: list[book.SummaryRow | None] = [
            ("运行编号 run id", self.run.run_id),
            ("复核的决定 decisions", str(self.decisions.file)),
            ("开始 start", self.run_times()[0]),
            None,
            ("各结果笔数 results", book.SECTION),
            *((f"{RESULTS[code]} {code}", counts.get(code, 0)) for code in RESULTS),
        ]
        book.summary_sheet(wb, summary, widths=(26, 60))
        sheet = wb.create_sheet(RESULTS_SHEET)
        book.header(sheet, RESULT_COLUMNS)
        for i, r in enumerate(self.rows, start=2):
            d = r.decision
            sheet.append(
                [d.row, d.parcel_id, DECISIONS.get(d.decision, d.decision), d.target,
                 d.reviewer, r.message, r.result, None]
            )  # fmt: skip
            book.link(sheet.cell(row=i, column=8), r.link, "打开")
            if r.result in ("FAILED", "LINKED_ELSEWHERE", "NOT_A_CANDIDATE"):
                book.mark(sheet, i, len(RESULT_COLUMNS))
        book.wrap(sheet, 6)
        book.filters(sheet, RESULT_COLUMNS, len(self.rows))
        return book.save(wb, self.report_path("apply"))
