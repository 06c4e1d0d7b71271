"""Customer-service conversations (客服会话), as a shop's service console keeps them: the job
of the 客服质检 flow (``scenarios/demo-shop/flows/service-qc.toml``).

``/cs/log`` is the conversation log, one row per turn (``tr.turn``, ``data-conv``,
``data-seq``): 会话, 序号, 角色 (客服 / 买家), 客服, 买家, 时间, 内容; ``role=客服`` keeps the
agents' turns, ``since=YYYY-MM-DD HH:MM`` those from then on, 100 a page in time order
(``rel=next``). ``/cs/conversations/{conv}`` is one conversation, turn by turn.

``seed_service`` writes ``conversations`` conversations over the hours before ``now``:
buyers ask, agents answer from an everyday vocabulary, and a share of agent turns carries a
word a QC team flags — a forbidden promise (保证退款 …), abusive or contemptuous words (神经病
…), diverting the buyer off the platform (加微信 …) — spelled plainly or as agents evade:
full-width letters, a symbol or space inside, traditional characters. Innocent look-alikes
(型号VX200, 滚筒洗衣机, 保证质量，退款按规则) are planted too, and buyers swear now and then (a
buyer's words are not the agent's). ``service_truth.jsonl`` holds every agent turn's planted
words (class and word); the robots never read it.

``/_sandbox/cs-add`` adds turns (conversation, agent, time, text) as they happen: a test
makes words appear at a given rate and time.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.routing import Guard, Render, guarded, query_int

SERVICE_TRUTH_NAME = "service_truth.jsonl"
PAGE_ROWS = 100
AGENT, BUYER = "客服", "买家"

SCHEMA = """
CREATE TABLE IF NOT EXISTS cs_turns (
    turn_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    conv_id  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    role     TEXT NOT NULL,              -- 客服 | 买家
    agent    TEXT NOT NULL,
    buyer    TEXT NOT NULL,
    at       TEXT NOT NULL,              -- shop time, YYYY-MM-DD HH:MM:SS
    text     TEXT NOT NULL,
    UNIQUE (conv_id, seq)
);
CREATE INDEX IF NOT EXISTS cs_turns_at ON cs_turns(at, turn_id);
"""

# the words a QC team flags, by class, with the traditional spelling where it differs
# (written by hand: the ground truth does not depend on the converter the robot uses)
WORDS: dict[str, dict[str, str | None]] = {
    "promise": {
        "保证退款": "保證退款",
        "包赔": "包賠",
        "假一赔十": "假一賠十",
        "稳赚": "穩賺",
        "无条件退款": "無條件退款",
        "百分百有效": None,
    },
    "abuse": {
        "神经病": "神經病",
        "爱买不买": "愛買不買",
        "穷鬼": "窮鬼",
        "滚蛋": "滾蛋",
        "脑子进水": "腦子進水",
        "有病吧": None,
    },
    "off_platform": {
        "加微信": None,
        "加我微信": None,
        "vx": None,
        "加qq": None,
        "支付宝转账": "支付寶轉賬",
        "私下交易": None,
        "线下交易": "線下交易",
    },
}
EVASIONS = ("plain", "fullwidth", "symbol", "space", "traditional")
SYMBOLS = ("*", "·", "_", "|", "~", "😊")

CLEAN = (
    "亲，您好，请问有什么可以帮您？",
    "这款有现货，今天下单明天发货。",
    "退款审核通过后会原路退回，请留意。",
    "尺码建议参考详情页的尺码表哦。",
    "质量问题可以申请退货退款，运费我们承担。",
    "已经帮您备注了，仓库会优先安排。",
    "快递一般三到五天送达，偏远地区会慢一些。",
    "这个颜色是实拍，可能有轻微色差。",
    "您可以在订单页面申请售后，我们会尽快处理。",
    "感谢您的耐心等待，祝您生活愉快！",
)
# innocent text that shares letters with a flagged word: no hit
LOOKALIKES = (
    "型号VX200现在有货，可以直接拍。",
    "滚筒洗衣机可以洗，建议装洗衣袋。",
    "我们保证质量，退款按平台规则处理。",
    "微信支付和支付宝都可以付款。",
    "包邮的，赔付按平台规则走。",
    "神经末梢敏感的话建议选纯棉款。",
)
QUESTIONS = (
    "在吗？",
    "这个什么时候发货？",
    "我要退款，怎么操作？",
    "衣服有点大，能换小一码吗？",
    "快递怎么还没到？",
    "有没有优惠？",
)
BUYER_RUDE = ("你们是不是有病吧，这么慢", "爱买不买是吧？差评", "加微信能便宜吗？")
AGENTS = ("小美", "小丽", "阿杰", "小雨", "晓峰")


def spell(r: random.Random, word: str, traditional: str | None, kind: str) -> str:
    """``word`` as an agent types it to slip past a filter."""
    if kind == "fullwidth" and any(c.isascii() for c in word):
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word).upper()
    if kind == "symbol" and len(word) > 1:
        i = r.randrange(1, len(word))
        return word[:i] + r.choice(SYMBOLS) + word[i:]
    if kind == "space" and len(word) > 1:
        i = r.randrange(1, len(word))
        return word[:i] + r.choice((" ", "\u3000")) + word[i:]
    if kind == "traditional" and traditional:
        return traditional
    return word


def agent_line(kind: str, spelled: str) -> str:
    """An agent's sentence holding ``spelled`` between breaks (no word across neighbours)."""
    return {
        "promise": f"放心，{spelled}，有问题找我。",
        "abuse": f"{spelled}！问这么多遍。",
        "off_platform": f"这边不方便，{spelled}，给你便宜点。",
    }[kind]


def seed_service(
    conn: sqlite3.Connection,
    data_dir: Path,
    *,
    conversations: int,
    seed: int,
    now: datetime,
    hours: int = 8,
    flagged: float = 0.25,
) -> None:
    """``conversations`` conversations spread over the ``hours`` before ``now``; about
    ``flagged`` of the agent turns carry one planted word."""
    r = random.Random(f"service-{seed}")
    with (data_dir / SERVICE_TRUTH_NAME).open("w", encoding="utf-8") as truth:
        for c in range(conversations):
            conv = f"CS{now:%Y%m%d}{c:05d}"
            agent, buyer = r.choice(AGENTS), f"buyer_{r.randrange(10_000):04d}"
            at = now - timedelta(minutes=r.uniform(5, hours * 60))
            for seq in range(1, r.randint(2, 4) * 2 + 1):
                at += timedelta(seconds=r.randint(10, 90))
                if at > now:
                    break
                planted: list[dict[str, str]] = []
                if seq % 2:  # the buyer
                    role = BUYER
                    text = r.choice(BUYER_RUDE) if r.random() < 0.05 else r.choice(QUESTIONS)
                else:
                    role = AGENT
                    roll = r.random()
                    if roll < flagged:
                        kind = r.choice(list(WORDS))
                        word = r.choice(list(WORDS[kind]))
                        spelled = spell(r, word, WORDS[kind][word], r.choice(EVASIONS))
                        text = agent_line(kind, spelled)
                        planted.append({"kind": kind, "word": word, "spelled": spelled})
                    elif roll < flagged + 0.1:
                        text = r.choice(LOOKALIKES)
                    else:
                        text = r.choice(CLEAN)
                conn.execute(
                    "INSERT INTO cs_turns (conv_id, seq, role, agent, buyer, at, text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (conv, seq, role, agent, buyer, f"{at:%Y-%m-%d %H:%M:%S}", text),
                )
                if role == AGENT:
                    row = {"conv": conv, "seq": seq, "text": text, "words": planted}
                    truth.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_service_truth(data_dir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    with (data_dir / SERVICE_TRUTH_NAME).open(encoding="utf-8") as f:
        return {(row["conv"], row["seq"]): row for row in map(json.loads, f)}


def add_turns(conn: sqlite3.Connection, turns: list[dict[str, Any]]) -> int:
    """Agent turns as they happen: each ``conv`` (new or not), ``agent``, ``at`` and ``text``,
    numbered after the conversation's last turn."""
    conn.execute("BEGIN IMMEDIATE")
    for t in turns:
        last = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM cs_turns WHERE conv_id = ?", (t["conv"],)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO cs_turns (conv_id, seq, role, agent, buyer, at, text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                t["conv"],
                last + 1,
                t.get("role", AGENT),
                t.get("agent", AGENTS[0]),
                t.get("buyer", "buyer_0000"),
                t["at"],
                t["text"],
            ),
        )
    conn.execute("COMMIT")
    return len(turns)


def service_routes(conn: sqlite3.Connection, render: Render, login_required: Guard) -> list[Route]:
    async def log(request: Request) -> Response:
        page = query_int(request, "page", 1)
        role = request.query_params.get("role", "")
        since = request.query_params.get("since", "")
        where, args = [], []
        if role:
            where.append("role = ?")
            args.append(role)
        if since:
            where.append("at >= ?")
            args.append(since)
        sql = "SELECT * FROM cs_turns"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = conn.execute(
            sql + " ORDER BY at, turn_id LIMIT ? OFFSET ?",
            (*args, PAGE_ROWS + 1, (page - 1) * PAGE_ROWS),
        ).fetchall()
        more = ""
        if len(rows) > PAGE_ROWS:
            more = "/cs/log?" + urlencode(
                {k: v for k, v in (("role", role), ("since", since)) if v} | {"page": page + 1}
            )
        return render(request, "cs_log.html", {"rows": rows[:PAGE_ROWS], "next": more})

    async def conversation(request: Request) -> Response:
        conv = request.path_params["conv"]
        turns = conn.execute(
            "SELECT * FROM cs_turns WHERE conv_id = ? ORDER BY seq", (conv,)
        ).fetchall()
        if not turns:
            return render(request, "not_found.html", {}, 404)
        return render(request, "cs_conversation.html", {"conv": conv, "turns": turns})

    return [
        Route("/cs/log", guarded(login_required, log)),
        Route("/cs/conversations/{conv}", guarded(login_required, conversation)),
    ]


async def control_add(conn: sqlite3.Connection, request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"added": add_turns(conn, body["turns"])})
