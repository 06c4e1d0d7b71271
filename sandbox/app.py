"""The seller back office: login, refund list, refund detail and the approve action.

Server-rendered pages over SQLite. Every form carries a CSRF token; an approval carries the
version of the record it was rendered from, so a stale approval fails visibly instead of
paying an amount nobody saw. With ``control=True`` a few ``/_sandbox`` endpoints let tests
inject faults and change records behind a page's back; a real shop has none of these.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyotp
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox import catalog, db, live, logistics, merch, ordersearch, service, warehouse
from sandbox.aftersales import aftersales_routes
from sandbox.clock import shop_now
from sandbox.routing import query_int
from sandbox.storefront import storefront_routes
from sandbox.workbench import REMARKS, workbench_routes

HERE = Path(__file__).parent
PAGE_SIZE = 20
PAGE_SIZES = (20, 50, 100)  # 每页显示, as back offices offer it
BATCH_LIMIT = 50  # refunds one batch approval takes at most
STATUS_NAMES = {
    "WAIT_SELLER_AGREE": "买家已申请退款，等待卖家同意",
    "WAIT_BUYER_RETURN_GOODS": "卖家已同意退货，等待买家退货",
    "WAIT_SELLER_CONFIRM_GOODS": "买家已退货，等待卖家确认收货",
    "SELLER_REFUSE_BUYER": "卖家拒绝退款",
    "CLOSED": "退款关闭",
    "SUCCESS": "退款成功",
}
ORDER_STATUS_NAMES = {
    "WAIT_SELLER_SEND_GOODS": "买家已付款，等待卖家发货",
    "WAIT_BUYER_CONFIRM_GOODS": "卖家已发货，等待买家确认收货",
    "TRADE_FINISHED": "交易成功",
}
GOOD_STATUS_NAMES = {
    "BUYER_NOT_RECEIVED": "买家未收到货",
    "BUYER_RECEIVED": "买家已收到货",
    "BUYER_RETURNED_GOODS": "买家已退货",
}
# action -> (status it applies to, has_good_return, status after, button label)
ACTIONS = {
    "agree_refund": ("WAIT_SELLER_AGREE", 0, "SUCCESS", "同意退款"),
    "agree_return": ("WAIT_SELLER_AGREE", 1, "WAIT_BUYER_RETURN_GOODS", "同意退货"),
    "confirm_refund": ("WAIT_SELLER_CONFIRM_GOODS", None, "SUCCESS", "确认收货并退款"),
}


STALE_MESSAGE = "操作失败：该退款单在您打开页面后已被修改（状态或金额变化），请核对后重新操作"


def available_action(status: str, has_good_return: int) -> str | None:
    for action, (from_status, goods, _, _) in ACTIONS.items():
        if status == from_status and (goods is None or goods == has_good_return):
            return action
    return None


@dataclass
class Fault:
    """A fault the control API injected: the next ``count`` matching requests fail or stall."""

    path_prefix: str
    count: int
    status: int = 500
    delay_s: float = 0.0
    after: bool = False  # stall *after* the request was handled (the action has landed)
    drop: bool = False  # handle the request, then close the connection without an answer
    slow_body: bool = False  # the answer's headers at once, its body ``delay_s`` later


@dataclass
class Controls:
    faults: list[Fault] = field(default_factory=list)
    # refund id -> new refund_fee, applied right after that refund's detail page is rendered
    change_after_render: dict[str, str] = field(default_factory=dict)
    # live SKU -> how many more renders of its card before it goes off the shelf (a person
    # taking it down between a robot's decision and its press)
    live_off_after_renders: dict[str, int] = field(default_factory=dict)
    # sku -> (renders, price): its 商品管理 page sets that price once shown that many times
    merch_price_after: dict[str, tuple[int, str]] = field(default_factory=dict)
    # sessions logged in before the current generation are expired
    session_generation: int = 0
    expire_after_requests: int | None = None
    # (wall time, method, path) of every request but the control API's, when recording
    record_requests: bool = False
    requests: list[tuple[float, str, str]] = field(default_factory=list)
    # added before every answer but the control API's: a back office far away (a SaaS)
    latency_s: float = 0.0


class FaultInjection:
    """ASGI middleware that plays the injected faults: an error page or a stalled response."""

    def __init__(self, app: ASGIApp, controls: Controls) -> None:
        self.app = app
        self.controls = controls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            if self.controls.record_requests:
                self.controls.requests.append((time.time(), scope["method"], scope["path"]))
            if self.controls.latency_s:
                await asyncio.sleep(self.controls.latency_s)
            for fault in self.controls.faults:
                if fault.count > 0 and scope["path"].startswith(fault.path_prefix):
                    fault.count -= 1
                    if fault.drop:
                        await self.app(scope, receive, _swallow)
                        await _drop_connection(scope)
                        return
                    if fault.after or fault.slow_body:
                        held = "http.response.body" if fault.slow_body else "http.response.start"
                        await self.app(scope, receive, _stalled(send, fault.delay_s, held))
                        return
                    if fault.delay_s:
                        await asyncio.sleep(fault.delay_s)
                    if fault.status:
                        response = PlainTextResponse(
                            f"{fault.status} 服务器繁忙，请稍后再试", status_code=fault.status
                        )
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


async def _swallow(message: Message) -> None:
    """The answer a dropped connection never delivers."""


class _KeepRawSend:
    """Outermost layer: keeps the server's own ``send`` in the scope, so a fault can reach
    the connection beneath Starlette's wrappers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["sandbox.raw_send"] = send
        await self.app(scope, receive, send)


async def _drop_connection(scope: Scope) -> None:
    """Close the client's connection as a flaky network would after the request reached the
    shop: no status line, no body. uvicorn hands the app its request cycle's bound ``send``;
    its transport is the connection."""
    cycle = getattr(scope.get("sandbox.raw_send"), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    transport.abort()  # nothing more is written: not even uvicorn's 500 for an unanswered app
    await asyncio.sleep(0.01)  # let uvicorn see the connection lost (no 500 for a dead client)


def _stalled(send: Send, delay_s: float, held: str) -> Send:
    """``send``, with the message of type ``held`` (the answer's start or its body) sent
    ``delay_s`` late."""

    async def stalled_send(message: Message) -> None:
        if message["type"] == held:
            await asyncio.sleep(delay_s)
        await send(message)

    return stalled_send


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "session.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(data_dir: Path, *, control: bool = False, latency_ms: float = 0) -> ASGIApp:
    """Build the back-office application over the shop in ``data_dir``."""
    if not (data_dir / db.DB_NAME).exists():
        raise FileNotFoundError(
            f"no sandbox shop in {data_dir}: run `robots sandbox seed --data {data_dir}` first"
        )
    conn = db.connect(data_dir)
    conn.executescript(catalog.SCHEMA)  # a shop seeded before the storefront existed
    conn.executescript(warehouse.SCHEMA)
    conn.executescript(logistics.SCHEMA)
    conn.executescript(live.SCHEMA)
    conn.executescript(merch.SCHEMA)
    conn.executescript(service.SCHEMA)
    conn.executescript(ordersearch.INDEXES)
    sku_columns = {r["name"] for r in conn.execute("PRAGMA table_info(skus)")}
    if "cost" not in sku_columns:  # seeded before 商品管理
        conn.execute("ALTER TABLE skus ADD COLUMN cost TEXT NOT NULL DEFAULT '0'")
        conn.execute("ALTER TABLE skus ADD COLUMN state TEXT NOT NULL DEFAULT '在售'")
    if "totp_secret" not in {r["name"] for r in conn.execute("PRAGMA table_info(users)")}:
        conn.execute("ALTER TABLE users ADD COLUMN totp_secret TEXT")  # seeded before 2FA
    if "modified_at" not in {r["name"] for r in conn.execute("PRAGMA table_info(refunds)")}:
        conn.execute("ALTER TABLE refunds ADD COLUMN modified_at TEXT")  # seeded before skin 2
    last_totp_step: dict[str, int] = {}  # a code is good once: replays are refused
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(
        STATUS_NAMES=STATUS_NAMES,
        ORDER_STATUS_NAMES=ORDER_STATUS_NAMES,
        GOOD_STATUS_NAMES=GOOD_STATUS_NAMES,
        REMARKS=REMARKS,
    )
    templates.env.filters["yuan"] = lambda v: f"¥{float(v):,.2f}"
    controls = Controls(record_requests=control, latency_s=latency_ms / 1000)
    batch_results: dict[str, dict[str, Any]] = {}  # the answers of recent batch approvals

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return str(token)

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        context = {
            "user": request.session.get("user"),
            "csrf_token": csrf_token(request),
            **context,
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def checked_form_data(request: Request) -> FormData:
        """The posted form, once its CSRF token matches the session's (else PermissionError)."""
        form = await request.form()
        sent = str(form.get("csrf_token", ""))
        if not sent or not secrets.compare_digest(sent, str(request.session.get("csrf", ""))):
            raise PermissionError
        return form

    async def checked_form(request: Request) -> dict[str, str]:
        return {k: str(v) for k, v in (await checked_form_data(request)).items()}

    def login_required(request: Request) -> Response | None:
        if controls.expire_after_requests is not None:
            controls.expire_after_requests -= 1
            if controls.expire_after_requests <= 0:
                controls.session_generation += 1
                controls.expire_after_requests = None
        session = request.session
        if session.get("user") and session.get("gen", 0) == controls.session_generation:
            return None
        session.clear()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = "/v2/login" if request.url.path.startswith("/v2/") else "/login"
        return RedirectResponse(f"{login}?next={quote(target)}", status_code=303)

    # -- pages --------------------------------------------------------------------------------
    async def login_page(request: Request) -> Response:
        return render(request, "login.html", {"next": request.query_params.get("next", "/refunds")})

    async def login_submit(request: Request) -> Response:
        try:
            form = await checked_form(request)
        except PermissionError:
            return render(
                request, "login.html", {"error": "页面已过期，请重新登录", "next": "/refunds"}, 403
            )
        page = "wb/login.html" if form.get("skin") == "wb" else "login.html"
        username, password = form.get("username", ""), form.get("password", "")
        target = form.get("next", "/refunds")
        if not target.startswith("/") or target.startswith("//"):
            target = "/refunds"
        if not db.check_password(conn, username, password):
            return render(request, page, {"error": "用户名或密码错误", "next": target}, 401)
        request.session.clear()
        if db.totp_secret(conn, username):
            request.session["otp_user"], request.session["otp_next"] = username, target
            request.session["otp_tries"] = 0
            return RedirectResponse("/login/otp", status_code=303)
        return logged_in(request, username, target)

    def logged_in(request: Request, username: str, target: str) -> Response:
        request.session.clear()
        request.session["user"] = username
        request.session["gen"] = controls.session_generation
        csrf_token(request)
        return RedirectResponse(target, status_code=303)

    async def otp_page(request: Request) -> Response:
        if "otp_user" not in request.session:
            return RedirectResponse("/login", status_code=303)
        return render(request, "otp.html", {})

    async def otp_submit(request: Request) -> Response:
        username = request.session.get("otp_user")
        if not username:
            return RedirectResponse("/login", status_code=303)
        try:
            form = await checked_form(request)
        except PermissionError:
            return render(request, "otp.html", {"error": "页面已过期，请重新登录"}, 403)
        totp = pyotp.TOTP(db.totp_secret(conn, username) or "")
        code, now = form.get("code", "").strip(), time.time()
        step = next(
            (
                totp.timecode(datetime.fromtimestamp(now + d * totp.interval, UTC))
                for d in (0, -1, 1)
                if secrets.compare_digest(totp.at(now + d * totp.interval), code)
            ),
            None,
        )
        if step is None or step <= last_totp_step.get(username, -1):
            tries = request.session["otp_tries"] = request.session.get("otp_tries", 0) + 1
            if tries >= 5:
                request.session.clear()
                return render(
                    request, "login.html", {"error": "验证码错误次数过多，请重新登录"}, 401
                )
            message = "验证码已使用过，请等待下一个" if step is not None else "动态验证码错误"
            return render(request, "otp.html", {"error": message}, 401)
        last_totp_step[username] = step
        return logged_in(request, username, request.session.get("otp_next", "/refunds"))

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/refunds", status_code=303)

    async def refund_list(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        status = request.query_params.get("status", "")
        page = query_int(request, "page", 1)
        per = request.query_params.get("per_page", "")
        size = int(per) if per in {str(n) for n in PAGE_SIZES} else PAGE_SIZE
        where, args = ("WHERE r.status = ?", [status]) if status in STATUS_NAMES else ("", [])
        # 按退款编号查询: several ids at once, separated by commas (as back offices offer)
        ids = [i for i in request.query_params.get("ids", "").replace("，", ",").split(",") if i]
        if ids:
            marks = ",".join("?" * len(ids))
            where = (
                f"{where} AND r.refund_id IN ({marks})"
                if where
                else f"WHERE r.refund_id IN ({marks})"
            )
            args += ids
        total = conn.execute(f"SELECT count(*) FROM refunds r {where}", args).fetchone()[0]
        pages = max(1, math.ceil(total / size))
        rows = conn.execute(
            f"""SELECT r.refund_id, r.refund_fee, r.status, r.created_at, r.deadline, r.version,
                       r.has_good_return, l.order_id, l.buyer_nick, l.title
                FROM refunds r JOIN order_lines l USING (line_id) {where}
                ORDER BY r.created_at, r.refund_id LIMIT ? OFFSET ?""",
            [*args, size, (page - 1) * size],
        ).fetchall()
        return render(
            request,
            "refunds.html",
            {
                "rows": rows,
                "per_page": size,
                "page_sizes": PAGE_SIZES,
                "status": status if status in STATUS_NAMES else "",
                "ids": ",".join(ids),
                "page": page,
                "pages": pages,
                "total": total,
                "batch": batch_results.get(request.query_params.get("batch", "")),
            },
        )

    def load_refund(refund_id: str) -> dict[str, Any] | None:
        row = conn.execute(
            """SELECT r.*, l.order_id, l.buyer_nick, l.title, l.category,
                      l.quantity AS line_quantity, l.sku AS line_sku, l.payment,
                      l.order_status, l.paid_at, l.shipped_at,
                      l.signed_at, l.outbound_company, l.outbound_sid, l.has_gift,
                      l.shared_discount, b.name AS buyer_name, b.blacklisted, b.orders_90d,
                      b.refunds_90d
               FROM refunds r JOIN order_lines l USING (line_id)
               JOIN buyers b ON b.buyer_nick = l.buyer_nick WHERE r.refund_id = ?""",
            (refund_id,),
        ).fetchone()
        if row is None:
            return None
        refund = dict(row)
        refund["open_refunds_on_line"] = conn.execute(
            """SELECT count(*) FROM refunds WHERE line_id = ? AND status IN
               ('WAIT_SELLER_AGREE', 'WAIT_BUYER_RETURN_GOODS', 'WAIT_SELLER_CONFIRM_GOODS')""",
            (refund["line_id"],),
        ).fetchone()[0]
        receipt = None
        if refund["return_sid"]:
            receipt = conn.execute(
                "SELECT * FROM warehouse_receipts WHERE waybill = ? ORDER BY receipt_id LIMIT 1",
                (refund["return_sid"],),
            ).fetchone()
        refund["receipt"] = dict(receipt) if receipt else None
        refund["action"] = available_action(refund["status"], refund["has_good_return"])
        refund["history"] = conn.execute(
            "SELECT * FROM audit_log WHERE refund_id = ? ORDER BY audit_id", (refund_id,)
        ).fetchall()
        return refund

    def detail_response(
        request: Request, refund_id: str, *, error: str = "", status: int = 200, notice: str = ""
    ) -> Response:
        refund = load_refund(refund_id)
        if refund is None:
            return render(request, "not_found.html", {"refund_id": refund_id}, 404)
        label = ACTIONS[refund["action"]][3] if refund["action"] else ""
        response = render(
            request,
            "refund.html",
            {"r": refund, "action_label": label, "error": error, "notice": notice},
            status,
        )
        after_render(refund_id)
        return response

    def after_render(refund_id: str) -> None:
        new_fee = controls.change_after_render.pop(refund_id, None)
        if new_fee is not None:  # the buyer edits the request while the page is on screen
            conn.execute(
                "UPDATE refunds SET refund_fee = ?, version = version + 1, modified_at = ?"
                " WHERE refund_id = ?",
                (new_fee, shop_now().isoformat(timespec="seconds"), refund_id),
            )

    async def refund_detail(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        notice = "操作成功" if request.query_params.get("done") else ""
        return detail_response(request, request.path_params["refund_id"], notice=notice)

    def apply_action(
        refund_id: str, action: str, *, version: str, refund_fee: str, user: str
    ) -> tuple[int, str] | None:
        """Apply a seller's action to a refund, checking it against the record the seller
        saw (version, amount, stage); None when done, else (HTTP status, message)."""
        if action not in ACTIONS:
            return 400, "未知操作"
        from_status, _, to_status, _ = ACTIONS[action]
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT status, refund_fee, version, has_good_return FROM refunds"
                " WHERE refund_id = ?",
                (refund_id,),
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return 404, "退款单不存在"
            stale = (
                str(row["version"]) != version
                or row["refund_fee"] != refund_fee
                or available_action(row["status"], row["has_good_return"]) != action
            )
            if stale:
                conn.execute("ROLLBACK")
                return 409, STALE_MESSAGE
            conn.execute(
                "UPDATE refunds SET status = ?, version = version + 1, modified_at = ?"
                " WHERE refund_id = ?",
                (to_status, shop_now().isoformat(timespec="seconds"), refund_id),
            )
            conn.execute(
                "INSERT INTO audit_log (at, actor, refund_id, action, amount, from_status,"
                " to_status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    shop_now().isoformat(timespec="milliseconds"),
                    user,
                    refund_id,
                    action,
                    row["refund_fee"],
                    from_status,
                    to_status,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return None

    async def refund_approve(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        refund_id = request.path_params["refund_id"]
        # the page's own script sends the form with fetch and updates itself in place (as
        # today's back offices do); a plain form post gets the classic redirect
        in_place = request.headers.get("x-requested-with") == "fetch"
        try:
            form = await checked_form(request)
        except PermissionError:
            expired = "页面已过期（CSRF 校验失败），请刷新后重试"
            if in_place:
                return JSONResponse({"ok": False, "message": expired}, status_code=403)
            return detail_response(request, refund_id, error=expired, status=403)
        refused = apply_action(
            refund_id,
            form.get("action", ""),
            version=form.get("version", ""),
            refund_fee=form.get("refund_fee", ""),
            user=request.session["user"],
        )
        if in_place:
            if refused is not None:
                return JSONResponse({"ok": False, "message": refused[1]}, status_code=refused[0])
            row = conn.execute(
                "SELECT status, version FROM refunds WHERE refund_id = ?", (refund_id,)
            ).fetchone()
            return JSONResponse(
                {
                    "ok": True,
                    "status": row["status"],
                    "status_name": STATUS_NAMES[row["status"]],
                    "version": row["version"],
                }
            )
        if refused is not None:
            status, message = refused
            if status == 404:
                return render(request, "not_found.html", {"refund_id": refund_id}, 404)
            return detail_response(request, refund_id, status=status, error=message)
        return RedirectResponse(f"/refunds/{refund_id}?done=1", status_code=303)

    async def refund_batch_approve(request: Request) -> Response:
        """批量同意 from the list: refund-only requests awaiting the seller, each checked
        against the version its row showed; the answer is the same rows with the outcome."""
        if redirect := login_required(request):
            return redirect
        try:
            form = await checked_form_data(request)
        except PermissionError:
            return PlainTextResponse("页面已过期（CSRF 校验失败），请刷新后重试", status_code=403)
        picks = [str(v).split(":", 1) for v in form.getlist("pick") if ":" in str(v)]
        if not picks:
            return PlainTextResponse("请先勾选退款", status_code=400)
        outcome: dict[str, Any] = {"ok": [], "failed": []}
        for refund_id, version in picks[:BATCH_LIMIT]:
            row = conn.execute(
                "SELECT status, has_good_return, refund_fee FROM refunds WHERE refund_id = ?",
                (refund_id,),
            ).fetchone()
            if row is None:
                outcome["failed"].append((refund_id, "退款单不存在"))
                continue
            if available_action(row["status"], row["has_good_return"]) != "agree_refund":
                outcome["failed"].append(
                    (refund_id, "该退款不支持批量同意（仅限待处理的仅退款申请）")
                )
                continue
            refused = apply_action(
                refund_id,
                "agree_refund",
                version=version,
                refund_fee=row["refund_fee"],
                user=request.session["user"],
            )
            if refused is None:
                outcome["ok"].append(refund_id)
            else:
                outcome["failed"].append((refund_id, refused[1]))
        outcome["failed"] += [(i, "超出单次批量上限") for i, _ in picks[BATCH_LIMIT:]]
        token = secrets.token_urlsafe(8)
        batch_results[token] = outcome
        while len(batch_results) > 200:  # only the latest answers are kept
            batch_results.pop(next(iter(batch_results)))
        ids = ",".join(refund_id for refund_id, _ in picks)
        return RedirectResponse(f"/refunds?ids={quote(ids)}&batch={token}", status_code=303)

    async def audit_page(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        rows = conn.execute("SELECT * FROM audit_log ORDER BY audit_id DESC LIMIT 200").fetchall()
        return render(request, "audit.html", {"rows": rows})

    # -- control API for tests (off unless asked for) -----------------------------------------
    async def control_fault(request: Request) -> Response:
        body = await request.json()
        controls.faults.append(
            Fault(
                path_prefix=body["path_prefix"],
                count=int(body.get("count", 1)),
                status=int(body.get("status", 500)),
                delay_s=float(body.get("delay_s", 0)),
                after=bool(body.get("after", False)),
                drop=bool(body.get("drop", False)),
                slow_body=bool(body.get("slow_body", False)),
            )
        )
        return JSONResponse({"ok": True})

    async def control_change_after_render(request: Request) -> Response:
        body = await request.json()
        controls.change_after_render[body["refund_id"]] = body["refund_fee"]
        return JSONResponse({"ok": True})

    async def control_live_off_after(request: Request) -> Response:
        body = await request.json()
        controls.live_off_after_renders[body["sku"]] = int(body.get("renders", 1))
        return JSONResponse({"ok": True})

    async def control_merch_price_after(request: Request) -> Response:
        body = await request.json()
        controls.merch_price_after[body["sku"]] = (int(body.get("renders", 1)), body["price"])
        return JSONResponse({"ok": True})

    async def control_cs_add(request: Request) -> Response:
        return await service.control_add(conn, request)

    async def control_expire_sessions(request: Request) -> Response:
        body = await request.json()
        controls.expire_after_requests = int(body.get("after_requests", 1))
        return JSONResponse({"ok": True})

    async def control_reset(request: Request) -> Response:
        controls.faults.clear()
        controls.change_after_render.clear()
        controls.live_off_after_renders.clear()
        controls.merch_price_after.clear()
        controls.requests.clear()
        return JSONResponse({"ok": True})

    async def control_requests(request: Request) -> Response:
        return JSONResponse({"requests": controls.requests})

    async def control_whoami(request: Request) -> Response:
        """Which shop answers on this port (a test harness checks it started its own)."""
        return JSONResponse({"data": str(data_dir.resolve())})

    async def control_set_price(request: Request) -> Response:
        """Change a SKU's shown price (and, given ``stock``, its stock), as a merchandiser
        would between two scans."""
        body = await request.json()
        changed = conn.execute(
            "UPDATE skus SET price = coalesce(?, price), stock = coalesce(?, stock) WHERE sku = ?",
            (
                str(body["price"]) if body.get("price") is not None else None,
                body.get("stock"),
                body["sku"],
            ),
        ).rowcount
        return JSONResponse({"ok": bool(changed)}, status_code=200 if changed else 404)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", home),
        Route("/healthz", health),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/login/otp", otp_page, methods=["GET"]),
        Route("/login/otp", otp_submit, methods=["POST"]),
        Route("/logout", logout),
        Route("/refunds", refund_list),
        Route("/refunds/batch-approve", refund_batch_approve, methods=["POST"]),
        Route("/refunds/{refund_id}", refund_detail),
        Route("/refunds/{refund_id}/approve", refund_approve, methods=["POST"]),
        Route("/audit", audit_page),
        *storefront_routes(conn, templates),
        *aftersales_routes(conn, render, login_required),
        *logistics.logistics_routes(conn, render, login_required),
        *live.live_routes(
            conn, render, login_required, checked_form, controls.live_off_after_renders
        ),
        *service.service_routes(conn, render, login_required),
        *merch.merch_routes(conn, render, login_required, checked_form, controls.merch_price_after),
        *workbench_routes(
            conn, render, login_required, checked_form, load_refund, apply_action, after_render
        ),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if control:
        routes += [
            Route("/_sandbox/faults", control_fault, methods=["POST"]),
            Route("/_sandbox/change-after-render", control_change_after_render, methods=["POST"]),
            Route("/_sandbox/expire-sessions", control_expire_sessions, methods=["POST"]),
            Route("/_sandbox/live-off-after", control_live_off_after, methods=["POST"]),
            Route("/_sandbox/merch-price-after", control_merch_price_after, methods=["POST"]),
            Route("/_sandbox/cs-add", control_cs_add, methods=["POST"]),
            Route("/_sandbox/reset", control_reset, methods=["POST"]),
            Route("/_sandbox/requests", control_requests),
            Route("/_sandbox/whoami", control_whoami),
            Route("/_sandbox/set-price", control_set_price, methods=["POST"]),
        ]
    middleware = [
        Middleware(FaultInjection, controls=controls),
        Middleware(
            SessionMiddleware,
            secret_key=_secret_key(data_dir),
            session_cookie="bo_session",
            same_site="lax",
            https_only=False,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    return _KeepRawSend(app) if control else app
