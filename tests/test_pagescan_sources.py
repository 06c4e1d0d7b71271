"""Where the page scan finds its product pages (categories, one product list, a fixed list, a
sitemap), how it knows a page is ready, and that a scenario which does not fit the shop stops
the scan with the key named instead of reporting a complete scan of nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openpyxl
import pytest
from conftest import Sandbox, run_pagescan, write_pagescan_workspace
from report_checks import summary_of, values

pytestmark = [pytest.mark.browser, pytest.mark.products(12)]
CATEGORIES = 'category_link = "nav a.category"\n'


def scan(sb: Sandbox, tmp_path: Path, *edits: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    ws = write_pagescan_workspace(
        tmp_path / "ws", sb.url, sb.data / "price-list.xlsx", edits=list(edits)
    )
    return run_pagescan(ws)


def read(sb: Sandbox) -> list[str]:
    """Product pages the shop served, in order."""
    return [p for _, _, p in sb.requests() if p.startswith("/shop/p/")]


def all_products(sb: Sandbox) -> set[str]:
    with sb.db() as conn:
        return {f"/shop/p/{r[0]}" for r in conn.execute("SELECT product_id FROM products")}


def workbook(tmp_path: Path) -> openpyxl.Workbook:
    """The newest page-scan workbook of the test's workspace."""
    (report,) = sorted((tmp_path / "ws" / "reports").glob("pagescan-*.xlsx"))[-1:]
    return openpyxl.load_workbook(report)


def summary(tmp_path: Path) -> dict[str, object]:
    return summary_of(workbook(tmp_path))


def test_from_a_sitemap_index(sandbox: Sandbox, tmp_path: Path) -> None:
    result = scan(
        sandbox,
        tmp_path,
        (CATEGORIES, 'sitemap = "/shop/sitemap.xml"\nsitemap_pattern = "/shop/p/"\n'),
    )
    assert result.returncode == 0, result.stderr
    assert set(read(sandbox)) == all_products(sandbox)
    assert "沙箱旗舰店" in str(summary(tmp_path)["店铺 shop"])  # the shop's name, not only its URL


def test_from_one_product_list_page_without_categories(sandbox: Sandbox, tmp_path: Path) -> None:
    with sandbox.db() as conn:
        code, n = conn.execute(
            "SELECT category_code, count(*) FROM products GROUP BY category_code LIMIT 1"
        ).fetchone()
        wanted = {
            f"/shop/p/{r[0]}"
            for r in conn.execute(
                "SELECT product_id FROM products WHERE category_code = ?", (code,)
            )
        }
    result = scan(
        sandbox,
        tmp_path,
        (CATEGORIES, ""),
        ('start_path = "/shop"', f'start_path = "/shop/c/{code}"'),
    )
    assert result.returncode == 0, result.stderr
    assert set(read(sandbox)) == wanted and len(wanted) == n


def test_from_a_fixed_list_with_extra_fields_and_no_final_price(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    titled = [t for t in sandbox.product_truth() if any(w["field"] == "title" for w in t["words"])]
    assert titled, "the seed planted no banned word in a title"
    chosen = sorted({f"/shop/p/{titled[0]['product_id']}", *sorted(all_products(sandbox))[:2]})
    urls = ", ".join(f'"{u}"' for u in chosen)
    result = scan(
        sandbox,
        tmp_path,
        (CATEGORIES, f"product_urls = [{urls}]\n"),
        ('sku_final_price = { selector = ".sku-final-price" }\n', ""),
        ("[price_list]", '[product.extra]\nheadline = { selector = "h1.title" }\n\n[price_list]'),
    )
    assert result.returncode == 0, result.stderr
    assert sorted(read(sandbox)) == chosen
    wb = workbook(tmp_path)
    where = [str(r["位置"]) for r in values(wb["违禁词"])]
    # an extra field is scanned like the title it repeats (named as the scenario names it)
    assert where.count("headline") == where.count("标题") > 0, where


def test_a_ready_response_whose_body_comes_late_is_waited_for(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The SKU answer's headers come at once and its body half a second later (a slow network,
    a loaded machine): each page is read once its SKU rows are built, never at the headers."""
    sandbox.control(
        "faults", path_prefix="/shop/api/products/", count=1000, slow_body=True, delay_s=0.5
    )
    ready = 'ready = { response = "/shop/api/products/[^/]+/skus", timeout_ms = 5000 }'
    result = scan(sandbox, tmp_path, ('ready = "table.skus[data-loaded]"', ready))
    assert result.returncode == 0, result.stderr
    assert set(read(sandbox)) == all_products(sandbox)
    wb = workbook(tmp_path)
    assert values(wb["失败页面"]) == []


@pytest.mark.parametrize(
    ("edit", "first"),
    [
        (
            ('product_link = "a.product-card"', 'product_link = "a.no-such-card"'),
            "ScenarioUnreadable: no product page found: crawl.product_link 'a.no-such-card'",
        ),
        (
            (CATEGORIES, 'category_link = "nav a.no-such-link"\n'),
            "ScenarioUnreadable: the scenario's crawl.category_link 'nav a.no-such-link' matched",
        ),
        (
            (CATEGORIES, 'sitemap = "/shop/sitemap.xml"\nsitemap_pattern = "/no-such/"\n'),
            "ScenarioUnreadable: no product page found: crawl.sitemap",
        ),
    ],
)
def test_finding_no_product_page_stops_the_scan(
    sandbox: Sandbox, tmp_path: Path, edit: tuple[str, str], first: str
) -> None:
    result = scan(sandbox, tmp_path, edit)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[0].startswith(first), result.stderr
    assert "Traceback" not in result.stderr and read(sandbox) == []


def test_a_ready_sign_that_never_shows_stops_after_the_first_pages(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    result = scan(
        sandbox,
        tmp_path,
        (
            'ready = "table.skus[data-loaded]"',
            'ready = { selector = "table.never-there", timeout_ms = 800 }',
        ),
    )
    assert result.returncode == 1, result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("ScenarioUnreadable: the scenario's product.ready (selector "), first
    assert "'table.never-there'" in first
    assert len(read(sandbox)) < 12  # it did not wait out every page of the shop
    wb = workbook(tmp_path)
    failed = values(wb["失败页面"])
    assert failed and all("product.ready" in str(r["原因"]) for r in failed)


@pytest.mark.parametrize(
    "ready",
    [
        'ready = { text = "table.skus .sku-price" }',
        'ready = { response = "/shop/api/products/[^/]+/skus", timeout_ms = 5000 }',
    ],
)
def test_ready_by_text_or_by_network_response(sandbox: Sandbox, tmp_path: Path, ready: str) -> None:
    result = scan(sandbox, tmp_path, ('ready = "table.skus[data-loaded]"', ready))
    assert result.returncode == 0, result.stderr
    assert set(read(sandbox)) == all_products(sandbox)


@pytest.mark.parametrize(
    ("edit", "first"),
    [
        (
            ('title = { selector = "h1.title" }', 'title = { selector = "h1.no-title" }'),
            "ScenarioUnreadable: the scenario's field 'product.title' (selector 'h1.no-title')",
        ),
        (
            ('detail = { selector = ".detail-text" }', 'detail = { selector = ".no-detail" }'),
            "ScenarioUnreadable: the scenario's product.detail ('.no-detail') matched nothing",
        ),
        (
            ('sku_price = { selector = ".sku-price" }', 'sku_price = { selector = ".sku-name" }'),
            "ScenarioUnreadable: the scenario's field 'product.sku_price' (selector '.sku-name')",
        ),
    ],
)
def test_a_text_or_price_selector_that_reads_nothing_is_not_a_clean_scan(
    sandbox: Sandbox, tmp_path: Path, edit: tuple[str, str], first: str
) -> None:
    """A title or price that cannot be read makes pages unreadable and stops the scan early; an
    optional text that matched on no page at all fails the run: never "no findings"."""
    result = scan(sandbox, tmp_path, edit)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[0].startswith(first), result.stderr
    assert "Traceback" not in result.stderr


def test_a_product_list_grown_by_a_load_more_button(sandbox: Sandbox, tmp_path: Path) -> None:
    """The lists' shared vocabulary serves the crawl too: 加载更多 until every product shows."""
    with sandbox.db() as conn:
        code, n = conn.execute(
            "SELECT category_code, count(*) FROM products GROUP BY category_code"
            " ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        rows = conn.execute("SELECT product_id FROM products WHERE category_code = ?", (code,))
        wanted = {f"/shop/p/{r[0]}" for r in rows}
    assert n > 2  # more than one 'page' of two below
    result = scan(
        sandbox,
        tmp_path,
        (CATEGORIES, ""),
        ('start_path = "/shop"', f'start_path = "/shop/c/{code}?view=more&per=2"'),
        ('next_page = "a[rel=next]"', 'load_more = "button.load-more"'),
    )
    assert result.returncode == 0, result.stderr
    assert set(read(sandbox)) == wanted
