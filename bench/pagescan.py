"""Benchmark: the page-scan robot's pages per minute, and the word matcher on its own.

    python bench/pagescan.py [--products 2000] [--seed 11] [--parallel N] [--copy-mb 1]

Part 1 seeds one storefront and copies it fresh for each variant: the robot with one page,
then with the default parallelism (the demo scenario's crawl.parallel_pages, else
"auto": pages chosen as the run goes; or ``--parallel N``), with the CPU a page costs (the
robot and Chromium) and the load average. The request-rate throttle is lifted so the robot
itself is measured. Each variant's findings are checked against the ground truth before its
figure counts, and the two variants must find the same.

Part 2 runs the matcher on at least 1 MB of normalised product copy with at least 1,000 words:
one Aho-Corasick pass (every occurrence of every word) against the naive
``for word in words: if word in text`` loop on the same text (which only answers yes/no per
word), and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import Shop, seeded_shop  # noqa: E402

from robots.engine.words import BannedWord, WordMatcher, normalise  # noqa: E402
from robots.ledger import Ledger, State  # noqa: E402
from robots.pagescan.inputs import load_allowlist, load_banned_words  # noqa: E402
from robots.pagescan.robot import PageScanRobot  # noqa: E402
from robots.pagescan.scenario import load_pagescan_scenario  # noqa: E402
from robots.registry import load_workspace  # noqa: E402
from sandbox.catalog import build_catalog  # noqa: E402

SCENARIO = ROOT / "scenarios" / "demo-shop" / "pagescan.toml"
PRODUCT_LEVEL_RULES = {"VARIANT_SPREAD", "PAGE_PRICE_MISMATCH"}


def scan(
    url: str, scenario: Path, price_list: Path, work: Path, parallel: int | str
) -> tuple[int, set]:
    """One full scan in a fresh workspace; returns pages read and the findings."""
    work.mkdir()
    (work / "robots.toml").write_text(
        f"[browser]\nparallel_pages = {json.dumps(parallel)}\n[retry]\nattempts = 3\n",
        encoding="utf-8",
    )
    ws = load_workspace(work)
    sc = load_pagescan_scenario(scenario, base_url=url, price_list=price_list)
    result = PageScanRobot(ws, sc, scenario).perform()
    found: set[tuple[str, ...]] = set()
    ledger = Ledger.at(work / "state" / "ledger.sqlite3")
    for item in ledger.items("pagescan", state=State.DONE):
        for f in item.details["prices"]:
            sku = "" if f["rule"] in PRODUCT_LEVEL_RULES else f["sku"]
            found.add(("price", f["product_id"], f["rule"], sku))
        for w in item.details["words"]:
            found.add(("word", w["product_id"], w["field"], w["word"]))
    ledger.close()
    return result.counts.get("pages_read", 0), found


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (Chromium, once closed)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def truth_of(data: Path) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    with (data / "products_truth.jsonl").open(encoding="utf-8") as f:
        for t in map(json.loads, f):
            out |= {("price", t["product_id"], p["rule"], p["sku"]) for p in t["prices"]}
            out |= {("word", t["product_id"], w["field"], w["word"]) for w in t["words"]}
    return out


def robot_part(args: argparse.Namespace) -> None:
    configured = load_pagescan_scenario(SCENARIO).crawl.parallel_pages
    parallel: int | str = args.parallel or configured or "auto"
    with tempfile.TemporaryDirectory(prefix="bench-pagescan-") as tmp_name:
        tmp = Path(tmp_name)
        seeded = seeded_shop(tmp, seed=args.seed, password="x", products=args.products)
        truth = truth_of(seeded)
        scenario = tmp / "pagescan.toml"
        text = SCENARIO.read_text(encoding="utf-8")
        text = text.replace(
            '"banned-words.txt"', json.dumps(str(SCENARIO.parent / "banned-words.txt"))
        )
        text = text.replace('"allowlist.txt"', json.dumps(str(SCENARIO.parent / "allowlist.txt")))
        text = text.replace("requests_per_second = 20", "requests_per_second = 1000")
        scenario.write_text(text, encoding="utf-8")
        print(f"{args.products} products seeded (seed {args.seed}); throttle lifted")
        results: dict[int | str, float] = {}
        findings: dict[int | str, set[tuple[str, ...]]] = {}
        for pages in (1, parallel):
            shop = Shop(seeded, tmp / f"shop{pages}")
            try:
                cpu_before, shop_before = cpu_s(), shop.cpu_s()
                start = time.perf_counter()
                read, found = scan(
                    shop.url, scenario, seeded / "price-list.xlsx", tmp / f"ws{pages}", pages
                )
                elapsed = time.perf_counter() - start
                cpu = cpu_s() - cpu_before
                shop_cpu = shop.cpu_s() - shop_before
            finally:
                shop.stop()
            findings[pages] = found
            recall = len(found & truth) / len(truth)
            precision = len(found & truth) / len(found)
            if read != args.products or recall < 0.99 or precision < 0.98:
                raise SystemExit(
                    f"{pages} pages: read {read}/{args.products}, recall {recall:.3f}, "
                    f"precision {precision:.3f}"
                )
            results[pages] = read / elapsed * 60
            print(
                f"  robot, {pages} page(s)  {read:>6} pages in {elapsed:7.1f} s = "
                f"{results[pages]:7.0f} pages/min, CPU {cpu / read:5.3f} s a page (robot and "
                f"Chromium; the shop's server {shop_cpu / read:5.3f} more)  (recall "
                f"{recall:.3f}, precision {precision:.3f} against the ground truth)  "
                f"load {os.getloadavg()[0]:.2f}"
            )
        same = findings[parallel] == findings[1]
        print("ratio")
        print(
            f"  robot {parallel} pages / robot 1 page   {results[parallel] / results[1]:6.2f}x"
            f"  (same findings: {same})"
        )
        if not same:
            raise SystemExit(f"{parallel} pages found other things than 1 page")


def matcher_part(args: argparse.Namespace) -> None:
    shipped = load_banned_words(SCENARIO.parent / "banned-words.txt")
    allow = load_allowlist(SCENARIO.parent / "allowlist.txt")
    # shipped words plus made-up ones of the same shape, to reach a list of 1,000+
    r = random.Random(args.seed)
    alphabet = (
        "国家级世界最高佳大第一唯首选好顶低便宜先进绝对独全网销量"
        "球发领尖终极受欢迎王牌冠军致永久无二仅史前例万能特专供假货仿原单"
    )
    made: set[str] = set()
    while len(made) < 1_000:
        made.add("".join(r.choice(alphabet) for _ in range(r.randint(3, 5))))
    words = shipped + [BannedWord(w, "测试", "low") for w in sorted(made)]
    matcher = WordMatcher(words, allow)
    # product copy from the catalogue generator, with its planted words and evasions
    pieces: list[str] = []
    size = 0
    n = 0
    while size < args.copy_mb * 1_000_000:
        for p in build_catalog(args.seed + n, 500):
            for text in (p.title, p.subtitle, *p.image_alts, p.detail, *(s.name for s in p.skus)):
                pieces.append(text)
                size += len(text.encode("utf-8"))
        n += 1
    copy = "\n".join(pieces)
    start = time.perf_counter()
    text = normalise(copy).text
    normalising = time.perf_counter() - start
    keys = [normalise(w.word).text for w in words]

    start = time.perf_counter()
    hits = matcher.search_normalised(text)
    ac = time.perf_counter() - start
    start = time.perf_counter()
    present = [k for k in keys if k in text]
    naive = time.perf_counter() - start
    found_words = {w for _, w in hits}
    assert {w.word for w, k in zip(words, keys, strict=True) if k in present} == found_words
    print(
        f"matcher: {len(copy.encode('utf-8')) / 1e6:.2f} MB of product copy "
        f"({len(text):,} characters normalised in {normalising:.2f} s), {len(words):,} words"
    )
    print(f"  Aho-Corasick, one pass       {ac * 1000:8.1f} ms  ({len(hits):,} occurrences)")
    print(
        f"  naive `word in text` loop    {naive * 1000:8.1f} ms  ({len(present):,} words present)"
    )
    print("ratio")
    print(f"  naive / Aho-Corasick         {naive / ac:6.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--parallel", type=int, default=None, help="pages to compare with one page")
    ap.add_argument("--copy-mb", type=float, default=1.0, help="MB of product copy (matcher)")
    ap.add_argument("--skip-robot", action="store_true", help="only the matcher part")
    args = ap.parse_args()
    matcher_part(args)
    if not args.skip_robot:
        robot_part(args)


if __name__ == "__main__":
    main()
