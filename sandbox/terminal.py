"""The warehouse terminal: a desktop client (Tk) over the sandbox data, the way legacy
warehouse programs look. Keyboard-driven on purpose, as they are:

* a login window (user, password, Enter);
* the list of unlabelled parcels, with a menu: 文件 → 导出无名件… (Ctrl+E) asks for a file name
  and writes the list to .xlsx; 文件 → 刷新 (F5);
* 操作 → 关联包裹… (Ctrl+L): a form with the parcel number and the after-sales or order number;
  Enter links them and shows a visible confirmation (or the reason it refused);
* 操作 → 查找订单… (Ctrl+F): the back office's order search (``sandbox.ordersearch``, the same
  keyword, SKU, date and one-character-apart waybill options, the same hits in the same order,
  50 to a page: PageDown / PageUp); Ctrl+S writes every hit of every page to .xlsx.

It runs on an X display (Xvfb in tests and in `make demo`) and writes the same SQLite file the
back office reads, so a link made here shows up on the web parcel page.
"""

from __future__ import annotations

import json
import sqlite3
import tkinter as tk
from dataclasses import replace
from pathlib import Path
from tkinter import ttk
from typing import TYPE_CHECKING

from sandbox import db
from sandbox.aftersales import order_summary
from sandbox.clock import shop_now
from sandbox.ordersearch import OrderQuery, find_orders

if TYPE_CHECKING:
    from openpyxl import Workbook

TITLE = "仓库管理终端"
EXPORT_HEADERS = [
    "包裹号",
    "运单号",
    "快递公司",
    "寄件人",
    "寄件电话",
    "寄件地区",
    "商品",
    "重量(kg)",
    "到货时间",
    "备注",
]

# the columns of 查找订单's table and export, as the back office's search shows them
SEARCH_COLUMNS = [
    ("order_id", "订单号", 150),
    ("refund_id", "售后单号", 150),
    ("buyer_name", "买家", 70),
    ("buyer_nick", "昵称", 90),
    ("phone", "手机", 110),
    ("district", "地区", 90),
    ("lines", "商品", 160),
    ("outbound_waybill", "发货运单", 130),
    ("return_waybill", "退货运单", 130),
    ("signed_at", "签收时间", 140),
    ("linked", "已关联包裹", 70),
]


def open_parcels(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM parcels WHERE linked_to IS NULL ORDER BY received_at, parcel_id"
    ).fetchall()


def items_text(items_json: str) -> str:
    return "; ".join(f"{sku}×{qty}" for sku, qty in json.loads(items_json))


def save_whole(wb: Workbook, path: Path) -> None:
    """Save under a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)


def export_parcels(conn: sqlite3.Connection, path: Path) -> int:
    """Write the open parcels as the terminal's export does; returns how many."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "无名件"
    ws.append(EXPORT_HEADERS)
    rows = open_parcels(conn)
    for p in rows:
        ws.append(
            [
                p["parcel_id"],
                p["waybill"],
                p["courier"],
                p["sender_name"],
                p["sender_phone"],
                p["district"],
                items_text(p["items"]),
                float(p["weight_kg"]),
                p["received_at"],
                p["note"],
            ]
        )
    save_whole(wb, path)
    return len(rows)


def search_row(conn: sqlite3.Connection, order_id: str) -> list[str]:
    """One hit of 查找订单 as its table and export show it."""
    row = order_summary(conn, order_id)
    row["linked"] = "是" if row["linked"] else "否"
    return [row[key] for key, _, _ in SEARCH_COLUMNS]


def export_hits(conn: sqlite3.Connection, query: OrderQuery, path: Path) -> int:
    """Write every hit of ``query`` (all its pages, in the search's order) to .xlsx; returns how
    many."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "查找订单"
    ws.append([text for _, text, _ in SEARCH_COLUMNS])
    page, total = 1, 0
    while True:
        hits = find_orders(conn, replace(query, page=page))
        for order_id in hits.order_ids:
            ws.append(search_row(conn, order_id))
            total += 1
        if hits.page >= hits.pages:
            break
        page += 1
    save_whole(wb, path)
    return total


def link_parcel(conn: sqlite3.Connection, parcel_id: str, target: str, actor: str) -> str:
    """Link a parcel to an after-sales request or order; returns '' or why it refused."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT linked_to FROM parcels WHERE parcel_id = ?", (parcel_id,)
        ).fetchone()
        if row is None:
            conn.execute("ROLLBACK")
            return f"没有包裹 {parcel_id}"
        if row["linked_to"]:
            conn.execute("ROLLBACK")
            return f"包裹 {parcel_id} 已关联到 {row['linked_to']}"
        known = conn.execute(
            "SELECT 1 FROM refunds WHERE refund_id = ? UNION ALL "
            "SELECT 1 FROM order_lines WHERE order_id = ? LIMIT 1",
            (target, target),
        ).fetchone()
        if known is None:
            conn.execute("ROLLBACK")
            return f"没有售后单或订单 {target}"
        now = shop_now().strftime("%Y-%m-%d %H:%M:%S")
        conn.execute(
            "UPDATE parcels SET linked_to = ?, linked_at = ?, linked_by = ? WHERE parcel_id = ?",
            (target, now, actor, parcel_id),
        )
        conn.execute(
            "INSERT INTO parcel_links (at, actor, parcel_id, target) VALUES (?, ?, ?, ?)",
            (now, actor, parcel_id, target),
        )
        record_receipt(conn, parcel_id, target)
        conn.execute("COMMIT")
        return ""
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def record_receipt(conn: sqlite3.Connection, parcel_id: str, target: str) -> None:
    """入库, as a WMS does when a parcel is put to an after-sales request: a warehouse receipt
    under the request's return waybill (the parcel's own when the request has none), with
    what the parcel holds of the refunded SKU (or its first item, which then will not match),
    so the refund page shows the goods as received."""
    refund = conn.execute(
        "SELECT return_sid, sku AS refund_sku FROM refunds WHERE refund_id = ?", (target,)
    ).fetchone()
    if refund is None:  # linked to an order (a refused delivery): no request to receive for
        return
    parcel = conn.execute(
        "SELECT waybill, courier, items, received_at FROM parcels WHERE parcel_id = ?",
        (parcel_id,),
    ).fetchone()
    items = [(str(sku), int(qty)) for sku, qty in json.loads(parcel["items"])]
    sku, quantity = next(((s, q) for s, q in items if s == refund["refund_sku"]), items[0])
    conn.execute(
        "INSERT INTO warehouse_receipts (waybill, courier, sku, quantity, received_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            refund["return_sid"] or parcel["waybill"],
            parcel["courier"],
            sku,
            quantity,
            parcel["received_at"],
        ),
    )


class Terminal:
    def __init__(self, root: tk.Tk, data_dir: Path, export_dir: Path) -> None:
        self.root, self.export_dir = root, export_dir
        self.conn = db.connect(data_dir)
        self.user = ""
        root.title(f"{TITLE} - 登录")
        root.geometry("420x200+20+20")
        self.login_frame = frame = ttk.Frame(root, padding=16)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text="用户名").grid(row=0, column=0, sticky="w", pady=4)
        self.username = ttk.Entry(frame, width=28)
        self.username.grid(row=0, column=1, pady=4)
        ttk.Label(frame, text="密码").grid(row=1, column=0, sticky="w", pady=4)
        self.password = ttk.Entry(frame, width=28, show="*")
        self.password.grid(row=1, column=1, pady=4)
        ttk.Button(frame, text="登录", command=self.login).grid(row=2, column=1, sticky="e")
        self.login_error = ttk.Label(frame, text="", foreground="#c00")
        self.login_error.grid(row=3, column=0, columnspan=2, sticky="w")
        root.bind("<Return>", lambda _e: self.login())
        self.username.focus_set()

    # -- login --------------------------------------------------------------------------
    def login(self) -> None:
        user, password = self.username.get().strip(), self.password.get()
        if not db.check_password(self.conn, user, password):
            self.login_error.configure(text="用户名或密码错误")
            self.password.delete(0, "end")
            return
        self.user = user
        self.root.unbind("<Return>")
        self.login_frame.destroy()
        self.main_window()

    # -- the parcel list ----------------------------------------------------------------
    def main_window(self) -> None:
        root = self.root
        root.title(f"{TITLE} - 无名件")
        root.geometry("1000x560+20+20")
        menubar = tk.Menu(root)
        file_menu = tk.Menu(menubar, tearoff=False)
        file_menu.add_command(label="导出无名件…", accelerator="Ctrl+E", command=self.export_dialog)
        file_menu.add_command(label="刷新", accelerator="F5", command=self.refresh)
        file_menu.add_separator()
        file_menu.add_command(label="退出", command=root.destroy)
        menubar.add_cascade(label="文件", menu=file_menu, underline=0)
        action_menu = tk.Menu(menubar, tearoff=False)
        action_menu.add_command(label="关联包裹…", accelerator="Ctrl+L", command=self.link_dialog)
        action_menu.add_command(label="查找订单…", accelerator="Ctrl+F", command=self.search_dialog)
        menubar.add_cascade(label="操作", menu=action_menu, underline=0)
        root.configure(menu=menubar)
        root.bind_all("<Control-e>", lambda _e: self.export_dialog())
        root.bind_all("<Control-l>", lambda _e: self.link_dialog())
        root.bind_all("<Control-f>", lambda _e: self.search_dialog())
        root.bind_all("<F5>", lambda _e: self.refresh())
        columns = ("parcel", "waybill", "courier", "sender", "phone", "items", "received")
        self.table = ttk.Treeview(root, columns=columns, show="headings", height=22)
        for col, text, width in zip(
            columns,
            ("包裹号", "运单号", "快递公司", "寄件人", "寄件电话", "商品", "到货时间"),
            (130, 150, 90, 90, 110, 240, 150),
            strict=True,
        ):
            self.table.heading(col, text=text)
            self.table.column(col, width=width, anchor="w")
        self.table.pack(fill="both", expand=True)
        self.status = ttk.Label(root, text="", anchor="w", padding=4)
        self.status.pack(fill="x")
        self.refresh()

    def refresh(self) -> None:
        self.table.delete(*self.table.get_children())
        rows = open_parcels(self.conn)
        for p in rows:
            self.table.insert(
                "",
                "end",
                values=(
                    p["parcel_id"],
                    p["waybill"],
                    p["courier"],
                    p["sender_name"],
                    p["sender_phone"],
                    items_text(p["items"]),
                    p["received_at"],
                ),
            )
        self.status.configure(text=f"当前用户 {self.user} · 未关联包裹 {len(rows)} 件")

    def _dialog(self, title: str, geometry: str) -> tk.Toplevel:
        """A modal window over the terminal, closed with Escape."""
        dialog = tk.Toplevel(self.root)
        dialog.title(title)
        dialog.geometry(geometry)
        dialog.bind("<Escape>", lambda _e: dialog.destroy())
        return dialog

    # -- export -------------------------------------------------------------------------
    def export_dialog(self) -> None:
        dialog = self._dialog("导出无名件", "560x120+60+80")
        ttk.Label(dialog, text="文件名").pack(anchor="w", padx=12, pady=(12, 2))
        name = ttk.Entry(dialog, width=64)
        name.insert(0, str(self.export_dir / "无名件.xlsx"))
        name.pack(padx=12)
        name.select_range(0, "end")
        name.focus_set()

        def save(_event: object = None) -> None:
            path = Path(name.get().strip()).expanduser()
            try:
                n = export_parcels(self.conn, path)
            except OSError as exc:
                self.status.configure(text=f"导出失败：{exc}")
            else:
                self.status.configure(text=f"已导出 {n} 条到 {path}")
            dialog.destroy()

        ttk.Button(dialog, text="保存", command=save).pack(anchor="e", padx=12, pady=6)
        dialog.bind("<Return>", save)
        dialog.grab_set()

    # -- link ---------------------------------------------------------------------------
    def link_dialog(self) -> None:
        dialog = self._dialog("关联包裹", "520x170+60+80")
        ttk.Label(dialog, text="包裹号").grid(row=0, column=0, sticky="w", padx=12, pady=(12, 4))
        parcel = ttk.Entry(dialog, width=40)
        parcel.grid(row=0, column=1, pady=(12, 4))
        ttk.Label(dialog, text="售后单号/订单号").grid(row=1, column=0, sticky="w", padx=12)
        target = ttk.Entry(dialog, width=40)
        target.grid(row=1, column=1)
        result = ttk.Label(dialog, text="", padding=8)
        result.grid(row=2, column=0, columnspan=2, sticky="w", padx=4)
        parcel.focus_set()

        def submit(_event: object = None) -> None:
            p, t = parcel.get().strip(), target.get().strip()
            if not p or not t:
                result.configure(text="请输入包裹号和售后单号/订单号", foreground="#c00")
                return
            problem = link_parcel(self.conn, p, t, self.user)
            if problem:
                result.configure(text=f"关联失败：{problem}", foreground="#c00")
            else:
                result.configure(text=f"已关联 {p} → {t}", foreground="#080")
                self.refresh()
            parcel.delete(0, "end")
            target.delete(0, "end")
            parcel.focus_set()

        dialog.bind("<Return>", submit)
        dialog.grab_set()

    # -- order search -------------------------------------------------------------------
    def search_dialog(self) -> None:
        dialog = self._dialog("查找订单", "1240x600+10+40")
        form = ttk.Frame(dialog, padding=8)
        form.pack(fill="x")
        entries: dict[str, ttk.Entry] = {}
        for col, (key, label, width) in enumerate(
            (("q", "关键字", 30), ("sku", "商品编码", 16), ("since", "付款日期不早于", 12))
        ):
            ttk.Label(form, text=label).grid(row=0, column=2 * col, sticky="w", padx=(0, 4))
            entries[key] = ttk.Entry(form, width=width)
            entries[key].grid(row=0, column=2 * col + 1, padx=(0, 12))
        fuzzy = tk.BooleanVar(value=False)
        ttk.Checkbutton(form, text="运单号模糊（差一位）", variable=fuzzy).grid(row=0, column=6)
        ttk.Label(form, text="导出到").grid(row=1, column=0, sticky="w", pady=(6, 0))
        target = ttk.Entry(form, width=80)
        target.insert(0, str(self.export_dir / "查找订单.xlsx"))
        target.grid(row=1, column=1, columnspan=6, sticky="w", pady=(6, 0))
        table = ttk.Treeview(
            dialog, columns=[k for k, _, _ in SEARCH_COLUMNS], show="headings", height=22
        )
        for key, text, width in SEARCH_COLUMNS:
            table.heading(key, text=text)
            table.column(key, width=width, anchor="w")
        table.pack(fill="both", expand=True)
        status = ttk.Label(dialog, text="输入关键字后按回车", anchor="w", padding=4)
        status.pack(fill="x")
        shown = {"page": 1}

        def query(page: int = 1) -> OrderQuery:
            q, sku, since = (entries[k].get().strip() for k in ("q", "sku", "since"))
            return OrderQuery(q, sku, since, fuzzy.get(), page)

        def show(page: int) -> None:
            hits = find_orders(self.conn, query(page))
            table.delete(*table.get_children())
            for order_id in hits.order_ids:
                table.insert("", "end", values=search_row(self.conn, order_id))
            shown["page"] = hits.page
            status.configure(text=f"共 {hits.total} 条，第 {hits.page}/{hits.pages} 页")

        def export(_event: object = None) -> None:
            path = Path(target.get().strip()).expanduser()
            try:
                n = export_hits(self.conn, query(), path)
            except OSError as exc:
                status.configure(text=f"导出失败：{exc}")
            else:
                status.configure(text=f"已导出 {n} 条到 {path}")

        dialog.bind("<Return>", lambda _e: show(1))
        dialog.bind("<Next>", lambda _e: show(shown["page"] + 1))
        dialog.bind("<Prior>", lambda _e: show(shown["page"] - 1))
        dialog.bind("<Control-s>", export)
        entries["q"].focus_set()
        dialog.grab_set()


def run(data_dir: Path, export_dir: Path) -> None:
    root = tk.Tk()
    Terminal(root, data_dir, export_dir)
    root.mainloop()
