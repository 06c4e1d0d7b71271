"""The console's routes. Every page but the sign-in needs a signed-in person; every form
carries the session's CSRF token and a POST without it is refused (403); what a person may
do is checked on the server by role (``accounts.may``), never only hidden in the page.

The queue shows every robot's open items (``Ledger.open_items``; the page scan's findings as
the queue workbook has them) and takes a reviewer's decisions: refunds 同意 / 暂缓, parcels a
listed candidate or 不关联, page findings 已修改 / 忽略 / 误报. The decisions are written to a
file per robot under the workspace's state folder and applied by `robots apply` in a child
process, as a reviewed workbook is (live re-read, hard rules, exactly once). Each decision is
audited with what its row showed, and each result beside it. Runs are started as the
scheduler starts them and stopped as SIGTERM stops them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import openpyxl
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from robots.config import Target, Workspace
from robots.console import accounts
from robots.console.accounts import OPERATOR, REVIEWER, VIEWER
from robots.errors import RobotsError
from robots.ledger import Ledger, RunView
from robots.runtime.clock import host_now
from robots.runtime.lock import pid_alive

HERE = Path(__file__).parent
REFUNDS, RETURNS, PAGESCAN = "refunds", "returns", "pagescan"
REFUND_CHOICES = {"approve": "同意", "hold": "暂缓"}
# the parcels a person picks a candidate for (or none); others are looked into in the shop
PARCEL_DECIDABLE = {"NEEDS_REVIEW", "NO_MATCH"}
URGENCIES = ("已超时", "紧急")
ESCALATE_HOURS = 12.0
EVIDENCE_TYPES = {".png": "image/png", ".zip": "application/zip"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class QueueRow:
    """One open item as the queue shows it."""

    robot: str
    item_key: str
    run_id: str
    shop: str
    reason_code: str
    reason: str
    amount: Decimal | None
    deadline: datetime | None
    urgency: str
    subject: str  # what the item is about: a refund id, a parcel, a page
    buyer: str = ""
    link: str = ""
    review: str = ""
    # what a reviewer may decide here: (value, text); none for items decided elsewhere
    choices: tuple[tuple[str, str], ...] = ()
    fingerprint: str = ""  # a page finding as the person saw it


class Console:
    """The console of one workspace: its ledger, its templates, its routes."""

    def __init__(self, ws: Workspace, *, ledger: Ledger | None = None) -> None:
        self.ws = ws
        self.ledger = ledger or Ledger.of(ws)
        self.state = ws.path(ws.config.paths.ledger).parent
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # a buyer's <script> nickname is text
            undefined=jinja2.StrictUndefined,
        )
        from robots.registry import ROBOTS, title

        self.robot_text = {name: title(name) for name in ROBOTS}
        self.templates.filters["money"] = _money
        self.templates.filters["when"] = _when
        self.templates.filters["detail"] = _detail

    # -- plumbing ----------------------------------------------------------------------------
    def page(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        user = request.scope.get("console_user")
        html = self.templates.get_template(template).render(
            user=user,
            role_text=accounts.ROLE_TEXT,
            csrf=_csrf(request),
            path=request.url.path,
            may=lambda needed: user is not None and accounts.may(user[1], needed),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def refused(self, request: Request, why: str, status: int = 403) -> HTMLResponse:
        return self.page(request, "refused.html", status=status, why=why)

    def signed_in(
        self, needed: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for people whose role may do ``needed``; the sign-in page for anyone
        not signed in; 403 for the rest. A POST must carry the session's CSRF token."""

        async def guarded(request: Request) -> Response:
            name = request.session.get("user")
            found = self.ledger.console_user(name) if name else None
            if found is None:  # never signed in, or removed since
                request.session.pop("user", None)
                if request.method != "GET":
                    return self.refused(request, "请先登录 sign in first", 403)
                return RedirectResponse("/", status_code=303)
            request.scope["console_user"] = (name, found[0])
            if request.method == "POST" and not await _csrf_ok(request):
                return self.refused(request, "表单已失效，请刷新页面后重试 (CSRF token missing)")
            if not accounts.may(found[0], needed):
                return self.refused(
                    request, f"无权限：需要{accounts.ROLE_TEXT[needed]}角色 (needs {needed})"
                )
            return await handler(request)

        return guarded

    # -- signing in and out ------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        name = request.session.get("user")
        found = self.ledger.console_user(name) if name else None
        if found is None:
            return self.page(request, "login.html", error="")
        request.scope["console_user"] = (name, found[0])
        return await self.overview(request)

    async def login(self, request: Request) -> Response:
        if not await _csrf_ok(request):
            return self.refused(request, "表单已失效，请刷新页面后重试 (CSRF token missing)")
        form = await request.form()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        found = self.ledger.console_user(name) if name else None
        if not accounts.password_matches(found[1] if found else None, password):
            self.ledger.audit(name or "?", "login_failed", "", {})
            return self.page(request, "login.html", status=401, error="用户名或密码不正确")
        request.session.clear()  # a new session: nothing of the anonymous one carries over
        request.session["user"] = name
        request.session["csrf"] = secrets.token_urlsafe(32)
        self.ledger.audit(name, "login", "", {})
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        user = request.scope["console_user"]
        self.ledger.audit(user[0], "logout", "", {})
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    # -- 总览 ----------------------------------------------------------------------------------
    async def overview(self, request: Request) -> Response:
        rows = self.queue_rows()
        now = host_now()
        runs = self.ledger.recent_runs(limit=200)
        today = [r for r in runs if r.started_at.date() == now.date()]
        by_robot: dict[str, dict[str, Any]] = {}
        for r in runs:
            if r.started_at < now - timedelta(days=30):
                continue
            entry = by_robot.setdefault(self.who(r), {"runs": 0, "today": 0, "failed": 0})
            entry["runs"] += 1
            entry["today"] += r in today
            entry["failed"] += bool(r.failure)
        return self.page(
            request,
            "overview.html",
            charts=self.charts(now),
            open_total=len(rows),
            overdue=sum(r.urgency == "已超时" for r in rows),
            due_soon=sum(r.urgency == "紧急" for r in rows),
            money=sum((r.amount or Decimal("0") for r in rows), start=Decimal("0")),
            by_robot=by_robot,
            robot_text=self.robot_text,
        )

    def who(self, run: RunView) -> str:
        """A run's robot as people name it; a flow by its own name (流程 logistics)."""
        text = self.robot_text.get(run.robot, run.robot)
        return f"{text} {Path(run.scenario).stem}" if run.robot == "flow" else text

    def charts(self, now: datetime, days: int = 30) -> dict[str, Any]:
        """What 总览's charts draw (static/overview.js, Chart.js served from this package):
        runs a day by robot, money auto-approved a day against the daily cap, and the
        hand-overs a day by reason, over the last ``days`` days. Days are those of the
        scheduler's zone (``[scheduler] timezone``, the shop's by default), as the daily cap
        counts them; the ledger's times (the host's) are turned into it."""
        from robots.refunds.scenario import load_refund_scenario

        zone = ZoneInfo(self.ws.config.scheduler.timezone)

        def day_of(at: datetime) -> str:
            return at.astimezone(zone).date().isoformat()  # naive: the host's wall time

        first = (now.astimezone(zone) - timedelta(days=days - 1)).date()
        labels = [(first + timedelta(days=n)).isoformat() for n in range(days)]
        index = {d: n for n, d in enumerate(labels)}
        runs: dict[str, list[int]] = {}
        for r in self.ledger.recent_runs(limit=5000):
            day = day_of(r.started_at)
            if day in index:
                runs.setdefault(self.who(r), [0] * days)[index[day]] += 1
        reasons: dict[str, list[int]] = {}
        since = now - timedelta(days=days + 1)
        for _robot, state, reason, at in self.ledger.endings_since(since):
            day = day_of(at)
            if state != "done" and day in index:
                reasons.setdefault(reason or state, [0] * days)[index[day]] += 1
        top = sorted(reasons, key=lambda k: -sum(reasons[k]))[:8]
        approved = [
            self.ledger.money_committed(REFUNDS, first + timedelta(days=n)) / 100
            for n in range(days)
        ]
        caps = []
        for t in self.ws.config.targets:
            if t.robot == REFUNDS and t.enabled:
                try:
                    scenario = load_refund_scenario(self.ws.path(t.scenario))
                except RobotsError:  # a scenario that does not load has no cap to draw
                    continue
                caps.append(float(scenario.policy.daily_auto_total))
        return {
            "labels": labels,
            "runs": runs,
            "approved": approved,
            "cap": sum(caps) if caps else None,
            "reasons": {k: reasons[k] for k in top},
        }

    # -- 待处理 --------------------------------------------------------------------------------
    def queue_rows(self) -> list[QueueRow]:
        from robots.refunds.report import exception_row
        from robots.registry import ROBOTS

        now = host_now()
        shops: dict[str, str] = {}

        targets = {str(self.ws.path(t.scenario)): t.name for t in self.ws.config.targets}

        def shop_of(run_id: str) -> str:
            """The target whose scenario the run used (else the scenario file's name)."""
            if run_id not in shops:
                run = self.ledger.find_run(run_id) if run_id else None
                scenario = run.scenario if run else ""
                shops[run_id] = targets.get(scenario) or Path(scenario).stem
            return shops[run_id]

        rows: list[QueueRow] = []
        for robot in ROBOTS:
            if robot == PAGESCAN:  # as the queue workbook has them: the newest scans' findings
                rows += self._page_findings(shop_of)
                continue
            for v in self.ledger.open_items(robot):
                if robot == REFUNDS:
                    e = exception_row(v)
                    rows.append(
                        QueueRow(
                            robot,
                            v.item_key,
                            v.run_id,
                            shop_of(v.run_id),
                            e.reason_code,
                            e.reason,
                            e.amount,
                            e.deadline,
                            e.urgency(now, ESCALATE_HOURS),
                            e.refund_id,
                            buyer=e.buyer,
                            link=e.link,
                            review=e.review,
                            choices=tuple(REFUND_CHOICES.items()),
                        )
                    )
                elif robot == RETURNS:
                    row = v.details.get("row", {}) if isinstance(v.details, dict) else {}
                    top = [c for c in row.get("top") or [] if c.get("target")]
                    choices = (
                        *((f"link:{c['target']}", f"关联 {c['target']}（{c.get('score', '')}分）")
                          for c in top),
                        ("dismiss", "不关联"),
                    )  # fmt: skip
                    rows.append(
                        QueueRow(
                            robot,
                            v.item_key,
                            v.run_id,
                            shop_of(v.run_id),
                            v.reason_code or "SYSTEM_ERROR",
                            v.error_message or v.reason_code,
                            None,
                            None,
                            "",
                            str(row.get("parcel_id") or v.item_key),
                            buyer=str(row.get("sender_name") or ""),
                            link=str(row.get("link") or ""),
                            review=_reviewed(v.details),
                            choices=choices if v.reason_code in PARCEL_DECIDABLE else (),
                        )
                    )
                else:
                    row = v.details.get("row", {}) if isinstance(v.details, dict) else {}
                    rows.append(
                        QueueRow(
                            robot,
                            v.item_key,
                            v.run_id,
                            shop_of(v.run_id),
                            v.reason_code or "SYSTEM_ERROR",
                            v.error_message or v.reason_code,
                            Decimal(v.amount_cents) / 100 if v.amount_cents else None,
                            None,
                            "",
                            v.item_key,
                            link=str(row.get("@url") or row.get("link") or ""),
                        )
                    )
        return rows

    def _page_findings(self, shop_of: Callable[[str], str]) -> list[QueueRow]:
        """The page scan's open findings as the queue workbook has them (``open_findings``:
        the newest scans', less those a person settled), each with its page; a finding is
        decided 已修改 / 忽略 / 误报, a page the scan could not read is tried by the next."""
        from robots.pagescan.model import WordFinding
        from robots.pagescan.report import SEVERITY_NAMES, SkuPrices, price_problem
        from robots.pagescan.review import DECISIONS as FINDING_CHOICES
        from robots.pagescan.review import open_findings

        rows: list[QueueRow] = []
        for o in open_findings(self.ledger):
            shop, f = shop_of(o.run.run_id), o.finding
            common = {"review": o.note, "fingerprint": o.fingerprint}
            if isinstance(f, SkuPrices):
                h = f.head
                problems = "；".join(price_problem(x) for x in f.findings)
                rows.append(
                    QueueRow(
                        PAGESCAN, o.key, o.run.run_id, shop, h.rule,
                        f"{SEVERITY_NAMES.get(h.severity, h.severity)}：{problems}",
                        None, None, "", h.sku, buyer=h.title, link=h.url,
                        choices=tuple(FINDING_CHOICES.items()), **common,
                    )
                )  # fmt: skip
            elif isinstance(f, WordFinding):
                rows.append(
                    QueueRow(
                        PAGESCAN, o.key, o.run.run_id, shop, "BANNED_WORD",
                        f"违禁词 {f.word}（{f.category}）在{f.field}：{f.context}",
                        None, None, "", f.product_id, buyer=f.title, link=f.url,
                        choices=tuple(FINDING_CHOICES.items()), **common,
                    )
                )  # fmt: skip
            else:
                rows.append(
                    QueueRow(
                        PAGESCAN, f.item_key, f.run_id, shop, f.reason_code or "SYSTEM_ERROR",
                        f.error_message, None, None, "", f.item_key.split("|")[-1],
                        link=_page_link(f.details),
                    )
                )  # fmt: skip
        return rows

    async def queue(self, request: Request) -> Response:
        rows = self.queue_rows()
        q = request.query_params
        chosen = {k: q.get(k, "") for k in ("robot", "reason", "urgency", "shop")}
        shown = [
            r
            for r in rows
            if (not chosen["robot"] or r.robot == chosen["robot"])
            and (not chosen["reason"] or r.reason_code == chosen["reason"])
            and (not chosen["urgency"] or r.urgency == chosen["urgency"])
            and (not chosen["shop"] or r.shop == chosen["shop"])
        ]
        return self.page(
            request,
            "queue.html",
            rows=shown,
            total=len(rows),
            chosen=chosen,
            robots=sorted({r.robot for r in rows}),
            reasons=sorted({r.reason_code for r in rows}),
            shops=sorted({r.shop for r in rows if r.shop}),
            urgencies=URGENCIES,
            robot_text=self.robot_text,
        )

    async def decide(self, request: Request) -> Response:
        """The reviewer's decisions (refunds: 同意 / 暂缓; parcels: a candidate or 不关联),
        applied by `robots apply` (the same checks, the same exactly-once acting), one file
        per robot; every decision audited with what its row showed."""
        user = request.scope["console_user"][0]
        form = await request.form()
        open_rows = {r.item_key: r for r in self.queue_rows() if r.choices}
        by_robot: dict[str, list[dict[str, str]]] = {}
        problems: list[str] = []
        for field, value in form.multi_items():
            if not field.startswith("decision:") or not str(value):
                continue
            key, choice = field.removeprefix("decision:"), str(value)
            row = open_rows.get(key)
            if row is None:
                problems.append(f"{key}: 已不在待处理队列中（可能已被处理）")
                continue
            if choice not in dict(row.choices):
                problems.append(f"{row.subject}: 不是可选的决定 {choice!r}")
                continue
            note = str(form.get(f"note:{key}", "")).strip()[:500]
            base = {"item": key, "run": row.run_id, "reviewer": user, "note": note}
            if row.robot == REFUNDS:
                by_robot.setdefault(REFUNDS, []).append(
                    {**base, "refund_id": row.subject, "decision": choice}
                )
            elif row.robot == PAGESCAN:
                by_robot.setdefault(PAGESCAN, []).append(
                    {**base, "finding": key, "fingerprint": row.fingerprint,
                     "decision": choice, "subject": row.subject}
                )  # fmt: skip
            else:
                decision, _, target = choice.partition(":")
                by_robot.setdefault(RETURNS, []).append(
                    {**base, "parcel_id": row.subject, "decision": decision, "target": target}
                )
        if not problems and not by_robot:
            problems.append("没有选择任何决定")
        if problems:
            return self.page(request, "decided.html", status=400, results=[], problems=problems)
        for decided in by_robot.values():
            for d in decided:
                row = open_rows[d["item"]]
                self.ledger.audit(
                    user,
                    "decide",
                    d["item"],
                    {
                        "decision": d["decision"] + (f" {d['target']}" if d.get("target") else ""),
                        "note": d["note"],
                        "showed": {
                            "subject": row.subject,
                            "amount": str(row.amount) if row.amount is not None else "",
                            "reason": row.reason_code,
                            "buyer": row.buyer,
                            "deadline": row.deadline.isoformat() if row.deadline else "",
                        },
                    },
                )
        shown: list[dict[str, str]] = []
        for robot, decided in by_robot.items():
            results, trouble = await self._apply(user, robot, decided)
            problems += trouble
            for d in decided:
                subject = d.get("refund_id") or d.get("parcel_id") or d["subject"]
                code, text = results.get(d.get("finding") or subject, ("", ""))
                self.ledger.audit(
                    user, "applied", d["item"], {"decision": d["decision"], "result": code}
                )
                shown.append(
                    {"subject": subject, "decision": _decision_text(d), "reviewer": user,
                     "result": code, "text": text}
                )  # fmt: skip
        return self.page(
            request, "decided.html", status=200 if not problems else 502,
            results=shown, problems=problems,
        )  # fmt: skip

    async def _apply(
        self, user: str, robot: str, decided: list[dict[str, str]]
    ) -> tuple[dict[str, tuple[str, str]], list[str]]:
        """`robots apply` on one robot's decisions; each refund's or parcel's (result code,
        text), and what went wrong as a whole."""
        folder = self.state / "console"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = host_now().strftime("%Y%m%d-%H%M%S")
        file = folder / f"decisions-{stamp}-{secrets.token_hex(3)}.json"
        file.write_text(
            json.dumps({"robot": robot, "by": user, "rows": decided}, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "robots", "apply", str(file), "-w", str(self.ws.root)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        report = next(
            (
                line.removeprefix("result:").strip()
                for line in done.stdout.splitlines() + done.stderr.splitlines()
                if line.startswith("result:")
            ),
            "",
        )
        results: dict[str, tuple[str, str]] = {}
        if report and Path(report).is_file():
            wb = openpyxl.load_workbook(report, read_only=True)
            sheet = wb["应用结果"]
            rows = sheet.iter_rows(values_only=True)
            headers = [str(h) for h in next(rows)]
            for values in rows:
                cells = dict(zip(headers, values, strict=False))
                results[str(cells.get("退款编号") or cells.get("包裹号") or cells.get("问题"))] = (
                    str(cells.get("结果代码") or ""),
                    str(cells.get("结果") or ""),
                )
            wb.close()
        problems = []
        if done.returncode not in (0,) or not results:
            said = (done.stderr.strip().splitlines() or [""])[0]
            problems.append(f"应用未全部成功 (robots apply exit {done.returncode}): {said}")
        return results, problems

    # -- 运行 ----------------------------------------------------------------------------------
    async def runs(self, request: Request) -> Response:
        robot = request.query_params.get("robot") or None
        runs = self.ledger.recent_runs(robot, limit=100)
        targets = [t for t in self.ws.config.targets if t.enabled]
        return self.page(
            request, "runs.html", runs=runs, robot_text=self.robot_text, robot=robot or "",
            states={r.run_id: run_status(r) for r in runs}, targets=targets,
            started=request.query_params.get("started", ""),
        )  # fmt: skip

    async def run(self, request: Request) -> Response:
        run = self.ledger.find_run(request.path_params["run_id"])
        if run is None:
            return self.refused(request, "没有这次运行 (no such run)", 404)
        items = self.ledger.items(run.robot, run_id=run.run_id) if run.robot else []
        counts = Counter(i.state.value for i in items)
        status = run_status(run)
        logs = self.ws.path(self.ws.config.paths.logs).resolve()
        evidence = {
            i.item_key: [
                (Path(e).name, Path(e).resolve().relative_to(logs).as_posix())
                for e in i.evidence
                if Path(e).resolve().is_relative_to(logs) and Path(e).is_file()
            ]
            for i in items
        }
        pages = {i.item_key: _page_link(i.details) for i in items}
        return self.page(
            request, "run.html", run=run, items=items, robot_text=self.robot_text,
            state_text=STATE_TEXT, run_state=status, counts=counts,
            current=[i for i in items if i.state.value == "acting"],
            stoppable=status == "运行中" and runs_here(run), evidence=evidence, pages=pages,
        )  # fmt: skip

    async def evidence_file(self, request: Request) -> Response:
        """A screenshot (masked when it was taken) or a trace of a run, from the workspace's
        logs folder only."""
        logs = self.ws.path(self.ws.config.paths.logs).resolve()
        path = (logs / request.path_params["path"]).resolve()
        if (
            not path.is_relative_to(logs)
            or path.suffix.lower() not in EVIDENCE_TYPES
            or not path.is_file()
        ):
            return self.refused(request, "没有这个证据文件 (no such evidence file)", 404)
        return FileResponse(
            path,
            media_type=EVIDENCE_TYPES[path.suffix.lower()],
            filename=path.name,
            content_disposition_type="inline" if path.suffix.lower() == ".png" else "attachment",
        )

    async def start(self, request: Request) -> Response:
        """Start a target's run as the scheduler does: a child process of its own, its
        output in logs/console/, the run lock and the ledger as for any run."""
        user = request.scope["console_user"][0]
        form = await request.form()
        name = str(form.get("target", ""))
        target = next((t for t in self.ws.config.targets if t.name == name and t.enabled), None)
        if target is None:
            return self.refused(request, f"没有这个目标 (no enabled target {name!r})", 400)
        dry_run = form.get("dry_run") == "1"
        self._launch(user, target, ["--dry-run"] if dry_run else [], why="run_start")
        return RedirectResponse(f"/runs?started={target.name}", status_code=303)

    def _launch(self, user: str, target: Target, args: list[str], *, why: str) -> None:
        """``robots run <robot> --target T`` as the scheduler fires it, in a process of its
        own (its output in logs/console/), audited."""
        from robots.registry import spec

        cmd = [
            sys.executable, "-m", "robots", "run", target.robot, "--target", target.name,
            "--workspace", str(self.ws.root), *args,
        ]  # fmt: skip
        if self.ws.broker_url and spec(target.robot).on_cluster and "--cluster" not in cmd:
            cmd.append("--cluster")
        logs = self.ws.path(self.ws.config.paths.logs) / "console"
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / f"{target.name}-{host_now():%Y%m%d-%H%M%S}.log"
        env = {**os.environ, "ROBOTS_RUN_BY": f"console ({user})"}
        with log_file.open("wb") as out:
            child = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        threading.Thread(target=child.wait, daemon=True).start()  # reaped when it ends
        self.ledger.audit(
            user, why, target.name, {"robot": target.robot, "args": args, "pid": child.pid}
        )

    # -- 计划 ----------------------------------------------------------------------------------
    def current(self) -> Workspace:
        """robots.toml as it is now (its schedules may have been edited since the console
        started, as the scheduler service reads it at every fire); as loaded at start when
        it no longer loads."""
        from robots.errors import ConfigError
        from robots.registry import load_workspace

        try:
            return load_workspace(self.ws.root)
        except ConfigError:
            return self.ws

    def schedule_rows(self) -> list[dict[str, Any]]:
        """Each schedule of robots.toml: its trigger, next fire, whether paused, last fire."""
        from scheduler.history import History
        from scheduler.service import job_store_path, stored_jobs, trigger_for

        ws = self.current()
        tz = ZoneInfo(ws.config.scheduler.timezone)
        stored = {}
        if job_store_path(ws).exists():
            store = stored_jobs(ws)
            stored = {j.id: j for j in store.get_all_jobs()}
            store.shutdown()
        history = History(job_store_path(ws), tz)
        try:
            paused = history.paused()
            rows = []
            for s in ws.config.schedules:
                job = stored.get(s.name)
                if job is not None:
                    next_fire, note = job.next_run_time, ""
                else:
                    next_fire = trigger_for(s, tz).get_next_fire_time(None, datetime.now(tz))
                    note = "调度服务未载入 (scheduler not started)"
                last = history.fires(s.name, limit=1, busy=False)
                when = s.cron or f"每 {s.every_seconds} 秒"
                rows.append(
                    {
                        "name": s.name, "target": s.target, "enabled": s.enabled,
                        "when": when + ("，仅工作日" if s.working_days_only else ""),
                        "next": next_fire.replace(tzinfo=None) if next_fire else None,
                        "note": note, "paused": paused.get(s.name),
                        "last": last[0] if last else None, "args": " ".join(s.args),
                    }
                )  # fmt: skip
            return rows
        finally:
            history.close()

    async def schedules(self, request: Request) -> Response:
        return self.page(
            request, "schedules.html", schedules=self.schedule_rows(),
            zone=self.ws.config.scheduler.timezone,
        )  # fmt: skip

    async def schedule_action(self, request: Request) -> Response:
        """暂停 / 恢复 / 立即运行 one schedule (a paused schedule's fires are skipped and
        recorded as such by the scheduler service)."""
        from scheduler.history import History
        from scheduler.service import job_store_path

        user = request.scope["console_user"][0]
        name, action = request.path_params["name"], request.path_params["action"]
        ws = self.current()
        found = next((s for s in ws.config.schedules if s.name == name), None)
        if found is None or action not in ("pause", "resume", "run"):
            return self.refused(request, f"没有这个计划 (no schedule {name!r})", 404)
        if action == "run":
            target = ws.target_named(found.target)
            self._launch(user, target, list(found.args), why="schedule_run")
            return RedirectResponse(f"/runs?started={target.name}", status_code=303)
        history = History(job_store_path(ws), ZoneInfo(ws.config.scheduler.timezone))
        try:
            if action == "pause":
                history.pause(name, user)
            else:
                history.resume(name)
        finally:
            history.close()
        self.ledger.audit(user, f"schedule_{action}", name, {})
        return RedirectResponse("/schedules", status_code=303)

    async def stop(self, request: Request) -> Response:
        """Ask a running run to stop as SIGTERM does: it finishes the item in hand, records
        the rest as not started, writes its workbook and exits 143."""
        user = request.scope["console_user"][0]
        run = self.ledger.find_run(request.path_params["run_id"])
        if run is None or run_status(run) != "运行中":
            return self.refused(request, "这次运行已结束 (the run is not running)", 409)
        if not runs_here(run):
            return self.refused(
                request, "这次运行不在本机，无法从这里停止 (the run is on another machine)", 409
            )
        os.kill(int(run.summary["process"]["pid"]), signal.SIGTERM)
        self.ledger.audit(user, "run_stop", run.run_id, {"robot": run.robot})
        return RedirectResponse(f"/runs/{run.run_id}", status_code=303)

    # -- 审计 ----------------------------------------------------------------------------------
    async def audit(self, request: Request) -> Response:
        return self.page(
            request, "audit.html", audits=self.ledger.audits(limit=300), action_text=ACTION_TEXT
        )

    def app(self) -> Starlette:
        g = self.signed_in
        routes = [
            Route("/", self.home),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", g(VIEWER, self.logout), methods=["POST"]),
            Route("/queue", g(VIEWER, self.queue)),
            Route("/queue/decide", g(REVIEWER, self.decide), methods=["POST"]),
            Route("/runs", g(VIEWER, self.runs)),
            Route("/runs/start", g(OPERATOR, self.start), methods=["POST"]),
            Route("/runs/{run_id}", g(VIEWER, self.run)),
            Route("/runs/{run_id}/stop", g(OPERATOR, self.stop), methods=["POST"]),
            Route("/evidence/{path:path}", g(VIEWER, self.evidence_file)),
            Route("/schedules", g(VIEWER, self.schedules)),
            Route(
                "/schedules/{name}/{action}", g(OPERATOR, self.schedule_action), methods=["POST"]
            ),
            Route("/audit", g(OPERATOR, self.audit)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        settings = self.ws.config.console
        return Starlette(
            routes=routes,
            middleware=[
                Middleware(SecurityHeaders),
                Middleware(
                    SessionMiddleware,
                    secret_key=accounts.signing_key(self.state),
                    session_cookie="robots_console",
                    max_age=int(settings.session_hours * 3600),
                    same_site="strict",
                ),
            ],
        )


class SecurityHeaders:
    """Every answer: no framing, no inline script, nothing cached (pages show money)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, sending)


def runs_here(run: RunView) -> bool:
    """Whether ``run`` is a process of this machine (its row names its host and pid while it
    runs)."""
    process = run.summary.get("process") or {}
    return process.get("host") == socket.gethostname() and isinstance(process.get("pid"), int)


def run_status(run: RunView) -> str:
    """运行中, 已中断 (its process is gone without recording an end), 失败, 已停止 or 完成."""
    if run.ended_at is None:
        if runs_here(run) and not pid_alive(int(run.summary["process"]["pid"])):
            return "已中断"
        return "运行中"
    if run.failure:
        return "失败"
    return "已停止" if run.stopped else "完成"


def _decision_text(d: dict[str, str]) -> str:
    text = {"approve": "同意", "hold": "暂缓", "link": "关联", "dismiss": "不关联",
            "fixed": "已修改", "ignore": "忽略", "false_positive": "误报"}  # fmt: skip
    return text.get(d["decision"], d["decision"]) + (f" {d['target']}" if d.get("target") else "")


def _reviewed(details: dict[str, Any]) -> str:
    review = details.get("review") if isinstance(details, dict) else None
    if not isinstance(review, dict):
        return ""
    return f"已复核：{review.get('reviewer', '')} {review.get('note', '')}".strip()


def _page_link(details: dict[str, Any]) -> str:
    """The shop page an item was read from, as its row kept it."""
    row = details.get("row") if isinstance(details, dict) else None
    if not isinstance(row, dict):
        return ""
    link = str(row.get("link") or row.get("@url") or row.get("url") or "")
    return link if link.startswith(("http://", "https://")) else ""


def _csrf(request: Request) -> str:
    """The session's CSRF token, made on first need (the sign-in form has one too)."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return str(request.session["csrf"])


async def _csrf_ok(request: Request) -> bool:
    expected = request.session.get("csrf")
    form = await request.form()
    given = str(form.get("csrf", ""))
    return bool(expected) and secrets.compare_digest(given, str(expected))


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"¥{value:,.2f}"


STATE_TEXT = {
    "pending": "排队中",
    "acting": "操作中",
    "done": "已完成",
    "business_exception": "转人工",
    "system_exception": "系统异常",
}
ACTION_TEXT = {
    "login": "登录",
    "run_start": "启动运行",
    "schedule_run": "立即运行计划",
    "schedule_pause": "暂停计划",
    "schedule_resume": "恢复计划",
    "run_stop": "停止运行",
    "login_failed": "登录失败",
    "logout": "退出",
    "decide": "复核决定",
    "applied": "应用结果",
    "user_set": "设置用户",
    "user_removed": "删除用户",
}
DETAIL_TEXT = {
    "decision": "决定",
    "note": "备注",
    "showed": "当时显示",
    "result": "结果",
    "role": "角色",
    "refund_id": "退款编号",
    "amount": "金额",
    "reason": "原因",
    "buyer": "买家",
    "deadline": "截止",
}


def _detail(detail: dict[str, Any]) -> str:
    """An audit entry's details as a person reads them: 决定 approve；备注 …；当时显示 …"""
    parts = []
    for key, value in detail.items():
        shown = _detail(value) if isinstance(value, dict) else str(value)
        if shown:
            parts.append(f"{DETAIL_TEXT.get(key, key)} {shown}")
    return "；".join(parts)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")
