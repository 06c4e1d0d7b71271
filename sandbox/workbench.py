"""A second back office over the same shop, built like another platform ("商家工作台", /v2).

Where the first back office (``sandbox.app``) carries codes in attributes, this one shows
only what people read: 待商家处理 rather than WAIT_SELLER_AGREE, ¥1,299.00, 2026年11月20日
14:03, "近90天 退款 2 次 / 下单 5 次", "TS2301-BLK-M × 1", category paths, reason wordings of
another platform. Refunds are cards, ids sit in text and links, the list grows with a
"加载更多" button, and approving goes through a modal (a remark to choose, a box to tick)
that answers with a toast, HTTP 200 either way, without reloading the page. The data and the
ground truth are the first back office's, so the same tests hold on both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.routing import Guard, Render, query_int

PAGE_SIZE = 20
TODO = ("WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS")
STATUS_TEXT = {
    "WAIT_SELLER_AGREE": "待商家处理",
    "WAIT_BUYER_RETURN_GOODS": "待买家退货",
    "WAIT_SELLER_CONFIRM_GOODS": "待商家收货",
    "SELLER_REFUSE_BUYER": "商家已拒绝",
    "CLOSED": "售后关闭",
    "SUCCESS": "退款成功",
}
ORDER_STATUS_TEXT = {
    "WAIT_SELLER_SEND_GOODS": "待发货",
    "WAIT_BUYER_CONFIRM_GOODS": "已发货",
    "TRADE_FINISHED": "交易成功",
}
TYPE_TEXT = {"REFUND": "普通退款", "PRICE_PROTECTION": "价格保护", "PRICE_DIFFERENCE": "补差价"}
# another platform's wording of the same buyer-chosen reasons
REASON_TEXT = {
    "多拍/拍错/不想要": "拍错了/不想要了",
    "七天无理由": "7天无理由退货",
    "不喜欢/不合适": "不喜欢",
    "尺码不合适": "尺码不合适",
    "商品破损": "收到商品破损",
    "质量问题": "商品质量问题",
    "漏发/少件": "少件/漏发",
    "发错商品": "发错货",
    "与描述不符": "商品与页面描述不符",
    "物流停滞/签收异常": "物流停滞未更新",
}
# a JD-style tree: clothing, underwear included, under one root 服饰内衣, so a keyword such as
# 内衣 would match every dress (a scenario names leaves: 女士内衣, 文胸)
CATEGORY_PATH = {
    "T恤": "服饰内衣 > 女装 > T恤",
    "连衣裙": "服饰内衣 > 女装 > 连衣裙",
    "牛仔裤": "服饰内衣 > 女装 > 牛仔裤",
    "外套": "服饰内衣 > 女装 > 夹克/大衣",
    "鞋": "鞋靴 > 女鞋 > 休闲鞋",
    "配饰": "服饰内衣 > 服饰配件 > 围巾/帽子/腰带",
    "内衣": "服饰内衣 > 女士内衣 > 文胸",
    "定制": "定制服务 > 个性定制 > 定制T恤",
}
ACTION_LABEL = {
    "agree_refund": "同意退款",
    "agree_return": "同意退货",
    "confirm_refund": "确认收货并退款",
}
REMARKS = ["已核实，同意买家申请", "协商一致", "其他"]


def cn_time(value: str | None, *, seconds: bool = False) -> str:
    """2026年11月20日 14:03 from the database's ISO text."""
    if not value:
        return ""
    t = datetime.fromisoformat(value)
    return t.strftime("%Y年%m月%d日 %H:%M:%S" if seconds else "%Y年%m月%d日 %H:%M")


def yuan(value: Any) -> str:
    return f"¥{float(value):,.2f}"


def card(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "refund_id": row["refund_id"],
        "status": STATUS_TEXT[row["status"]],
        "fee": yuan(row["refund_fee"]),
        "title": row["title"],
        "kind": "退货退款" if row["has_good_return"] else "仅退款",
        "created": cn_time(row["created_at"]),
        "modified": cn_time(row["modified_at"] or row["created_at"], seconds=True),
        "buyer": row["buyer_nick"],
    }


def view(r: dict[str, Any]) -> dict[str, Any]:
    """What the detail page shows of a refund: words, not codes."""
    receipt = r["receipt"]
    return {
        "refund_id": r["refund_id"],
        "version": r["version"],
        "modified": cn_time(r["modified_at"] or r["created_at"], seconds=True),
        "status": STATUS_TEXT[r["status"]],
        "kind": "退货退款" if r["has_good_return"] else "仅退款",
        "type": TYPE_TEXT[r["refund_type"]],
        "fee": yuan(r["refund_fee"]),
        "goods": f"{r['sku']} × {r['quantity']}",
        "reason": REASON_TEXT.get(r["reason"], r["reason"]),
        "created": cn_time(r["created_at"]),
        "deadline": cn_time(r["deadline"], seconds=True),
        "intervention": "已介入" if r["intervention"] else "未介入",
        "open_on_line": r["open_refunds_on_line"],
        "order_id": r["order_id"],
        "title": r["title"],
        "category": CATEGORY_PATH.get(r["category"], r["category"]),
        "line": f"{r['line_sku']} × {r['line_quantity']}",
        "payment": yuan(r["payment"]),
        "order_status": ORDER_STATUS_TEXT[r["order_status"]],
        "signed": cn_time(r["signed_at"]) or "未签收",
        "gift": "含赠品" if r["has_gift"] else "无",
        "shared": "是" if r["shared_discount"] else "否",
        "buyer": r["buyer_nick"],
        "stats": f"近90天 退款 {r['refunds_90d']} 次 / 下单 {r['orders_90d']} 次",
        "risk": "黑名单" if r["blacklisted"] else "无",
        "return_company": r["return_company"] or "",
        "return_sid": r["return_sid"] or "—",
        "receipt": receipt
        and {
            "waybill": receipt["waybill"],
            "item": f"{receipt['sku']} × {receipt['quantity']}",
            "at": cn_time(receipt["received_at"]),
        },
        "action": r["action"],
        "action_label": ACTION_LABEL.get(r["action"] or "", ""),
        "raw_fee": r["refund_fee"],
    }


def workbench_routes(
    conn: sqlite3.Connection,
    render: Render,
    login_required: Guard,
    checked_form: Callable[[Request], Awaitable[dict[str, str]]],
    load_refund: Callable[[str], dict[str, Any] | None],
    apply_action: Callable[..., tuple[int, str] | None],
    after_render: Callable[[str], None],
) -> list[Route]:
    def todo_rows(offset: int) -> tuple[list[dict[str, Any]], bool]:
        marks = ", ".join("?" for _ in TODO)
        rows = conn.execute(
            f"""SELECT r.refund_id, r.refund_fee, r.status, r.created_at, r.modified_at,
                       r.has_good_return, l.title, l.buyer_nick
                FROM refunds r JOIN order_lines l USING (line_id) WHERE r.status IN ({marks})
                ORDER BY r.created_at, r.refund_id LIMIT ? OFFSET ?""",
            [*TODO, PAGE_SIZE + 1, offset],
        ).fetchall()
        return [card(r) for r in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE

    async def login_page(request: Request) -> Response:
        target = request.query_params.get("next", "/v2/aftersale")
        if not target.startswith("/") or target.startswith("//"):
            target = "/v2/aftersale"
        return render(request, "wb/login.html", {"next": target})

    async def todo(request: Request) -> Response:
        """The to-do list: 加载更多 appends cards; with ?view=pages a 下一页 button turns
        the page in place instead (both by fetch, the address never changes)."""
        if redirect := login_required(request):
            return redirect
        cards, more = todo_rows(0)
        paged = request.query_params.get("view") == "pages"
        return render(request, "wb/list.html", {"cards": cards, "more": more, "paged": paged})

    async def more_cards(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        offset = query_int(request, "offset", 0, least=0)
        cards, more = todo_rows(offset)
        response = render(request, "wb/cards.html", {"cards": cards})
        response.headers["X-More"] = "1" if more else "0"
        return response

    async def detail(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        refund_id = request.query_params.get("id", "")
        refund = load_refund(refund_id)
        if refund is None:
            return render(request, "wb/missing.html", {"refund_id": refund_id}, 404)
        response = render(request, "wb/detail.html", {"r": view(refund)})
        after_render(refund_id)
        return response

    async def agree(request: Request) -> Response:
        # a fetch from the modal: the answer is a toast, HTTP 200 whatever happened
        if login_required(request) is not None:
            return JSONResponse({"ok": False, "msg": "登录已失效，请重新登录"})
        try:
            form = await checked_form(request)
        except PermissionError:
            return JSONResponse({"ok": False, "msg": "页面已过期，请刷新后重试"})
        if not form.get("remark") or form.get("checked") != "1":
            return JSONResponse({"ok": False, "msg": "请选择处理备注并勾选核对"})
        refused = apply_action(
            form.get("id", ""),
            form.get("op", ""),
            version=form.get("ver", ""),
            refund_fee=form.get("fee", ""),
            user=request.session["user"],
        )
        if refused is None:
            return JSONResponse({"ok": True, "msg": "操作成功，售后单已更新"})
        status, _ = refused
        if status == 409:
            return JSONResponse({"ok": False, "msg": "处理失败：售后单状态已变更，请刷新后再试"})
        return JSONResponse({"ok": False, "msg": f"处理失败（{status}）"})

    async def home(request: Request) -> Response:
        return RedirectResponse("/v2/aftersale", status_code=303)

    return [
        Route("/v2", home),
        Route("/v2/login", login_page),
        Route("/v2/aftersale", todo),
        Route("/v2/aftersale/cards", more_cards),
        Route("/v2/aftersale/detail", detail),
        Route("/v2/aftersale/agree", agree, methods=["POST"]),
    ]
