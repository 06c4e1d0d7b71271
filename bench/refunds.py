"""Benchmark: the refunds robot against the ceiling of plain HTTP, on the same seeded shop.

    python bench/refunds.py [--refunds 2000] [--seed 11] [--parallel N]

One shop is seeded, then copied fresh for each variant, so all of them decide the same
refunds: (1) plain HTTP requests (httpx + lxml, same selectors, same policy): the ceiling a UI
robot can approach; (2) the robot with one page; (3) the robot with its configured parallelism
(robots.toml's browser.parallel_pages, at least 2). Each variant is checked against the
ground truth before its figure counts. Prints decisions per minute and the ratios between them.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import Shop  # noqa: E402

from robots.config import load_workspace  # noqa: E402
from robots.refunds.backoffice import RefundBackOffice  # noqa: E402
from robots.refunds.policy import Approve, decide  # noqa: E402
from robots.refunds.robot import RefundsRobot  # noqa: E402
from robots.refunds.scenario import load_refund_scenario  # noqa: E402
from sandbox.seed import load_ground_truth, seed_shop  # noqa: E402

PASSWORD = "bench-" + "pw-4711"
SCENARIO = ROOT / "scenarios" / "demo-shop" / "refunds.toml"


def approved(shop: Shop) -> set[str]:
    with sqlite3.connect(shop.data / "shop.sqlite3") as conn:
        return {r[0] for r in conn.execute("SELECT refund_id FROM audit_log")}


def http_baseline(url: str, scenario_file: Path) -> int:
    """Same reads, same policy, same approvals, with no browser: returns decisions made."""
    sc = load_refund_scenario(scenario_file, base_url=url)
    decisions = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        page = lxml_html.fromstring(client.get(sc.login.path).text)
        token = page.cssselect("input[name=csrf_token]")[0].get("value")
        client.post(
            sc.login.path,
            data={
                "csrf_token": token,
                "username": "robot",
                "password": PASSWORD,
                "next": "/refunds",
            },
        )
        listed: list[str] = []
        for status in sc.shop.pending_statuses:
            next_url: str | None = urljoin(url, sc.list.path.format(status=status))
            while next_url:
                doc = lxml_html.fromstring(client.get(next_url).text)
                id_spec = sc.list.row_fields["refund_id"]  # the demo keeps it in an attribute
                listed += [r.get(id_spec.attribute or "") for r in doc.cssselect(sc.list.row)]
                nxt = doc.cssselect(sc.list.next_page or "a[rel=next]")
                next_url = urljoin(url, nxt[0].get("href")) if nxt else None
        office = RefundBackOffice(sc)
        for refund_id in listed:
            detail = sc.detail.path.format(refund_id=refund_id)
            doc = lxml_html.fromstring(client.get(detail).text)
            raw: dict[str, Any] = {}
            for name, spec in sc.detail.fields.items():
                found = doc.cssselect(spec.selector)[: None if spec.all else 1]
                raw[name] = [
                    (el.get(spec.attribute) or "") if spec.attribute else el.text_content()
                    for el in found
                ]
            refund = office.parse(raw)  # the same typed, fail-closed reading as the robot
            decision = decide(refund, sc.policy, office.clock.now())
            decisions += 1
            if isinstance(decision, Approve):
                form = {
                    i.get("name"): i.get("value")
                    for i in doc.cssselect("#approve-form input[type=hidden]")
                }
                r = client.post(f"{detail}/approve", data=form)
                if r.status_code != 303:
                    raise RuntimeError(f"approval of {refund_id} answered {r.status_code}")
    return decisions


def robot_run(url: str, scenario_file: Path, work: Path, parallel: int) -> int:
    work.mkdir()
    creds = work / "credentials.toml"
    creds.write_text(f'[demo-shop]\nusername = "robot"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    base = (ROOT / "robots.toml").read_text(encoding="utf-8")
    base = re.sub(r"parallel_pages = \d+", f"parallel_pages = {parallel}", base)
    base = base.replace(
        'credentials_file = "~/.config/robots/credentials.toml"', f'credentials_file = "{creds}"'
    )
    base = base.replace(
        'scenario = "scenarios/demo-shop/refunds.toml"', f'scenario = "{scenario_file}"'
    )
    (work / "robots.toml").write_text(base, encoding="utf-8")
    ws = load_workspace(work)
    sc = load_refund_scenario(scenario_file, base_url=url)
    result = RefundsRobot(ws, sc, scenario_file).perform()
    return result.counts.get("approved", 0) + result.counts.get("handed_to_person", 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--refunds", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="the robot's parallelism to compare with one page "
        "(default: robots.toml's browser.parallel_pages)",
    )
    args = ap.parse_args()
    # compare one page with the configured parallelism, or with 2 when that is 1 too
    parallel = args.parallel or max(2, load_workspace(ROOT).config.browser.parallel_pages)

    with tempfile.TemporaryDirectory(prefix="bench-refunds-") as tmp_name:
        tmp = Path(tmp_name)
        seeded = tmp / "seeded"
        seed_shop(seeded, refunds=args.refunds, seed=args.seed, username="robot", password=PASSWORD)
        truth = load_ground_truth(seeded)
        expected = {rid for rid, t in truth.items() if t["expected"] == "approve"}
        to_decide = sum(1 for t in truth.values() if t["expected"] != "untouched")
        # the daily total would stop a 2,000-refund shop early; it is not what is measured
        scenario = tmp / "refunds.toml"
        scenario.write_text(
            SCENARIO.read_text(encoding="utf-8").replace(
                "daily_auto_total = 20000", "daily_auto_total = 100000000"
            ),
            encoding="utf-8",
        )

        variants = [
            ("plain HTTP (ceiling)", lambda url: http_baseline(url, scenario)),
            ("robot, 1 page", lambda url: robot_run(url, scenario, tmp / "ws1", 1)),
            (
                f"robot, {parallel} pages",
                lambda url: robot_run(url, scenario, tmp / "wsN", parallel),
            ),
        ]
        results: dict[str, float] = {}
        print(
            f"{args.refunds} refunds seeded (seed {args.seed}): {to_decide} to decide, "
            f"{len(expected)} eligible"
        )
        for i, (name, fn) in enumerate(variants):
            shop = Shop(seeded, tmp / f"shop{i}")
            try:
                start = time.perf_counter()
                decided = fn(shop.url)
                elapsed = time.perf_counter() - start
                approved_ids = approved(shop)
            finally:
                shop.stop()
            if decided != to_decide or approved_ids != expected:
                raise SystemExit(
                    f"{name}: decided {decided}/{to_decide}, approvals differ from "
                    f"the ground truth by {len(approved_ids ^ expected)}"
                )
            per_min = decided / elapsed * 60
            results[name] = per_min
            print(
                f"  {name:<22} {decided:>6} decisions in {elapsed:7.1f} s = "
                f"{per_min:9.0f} decisions/min  (approvals match the ground truth)"
            )
        http, one, many = (results[name] for name, _ in variants)
        print("ratios")
        print(f"  robot {parallel} pages / plain HTTP   {many / http:6.3f}")
        print(f"  robot 1 page / plain HTTP    {one / http:6.3f}")
        print(f"  robot {parallel} pages / robot 1 page {many / one:6.2f}x")


if __name__ == "__main__":
    main()
