"""The storefront shoppers (and the page-scan robot) browse: categories, product pages, SKU API.

Public pages, no login. The product page's SKU table is filled by JavaScript from
``/shop/api/products/{id}/skus`` after the page loads, so reading prices needs a browser.
"""

from __future__ import annotations

import json
import math
import sqlite3
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from sandbox.catalog import final_price
from sandbox.routing import query_int

CATEGORY_PAGE_SIZE = 24
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320">'
    '<rect width="320" height="320" fill="#e8e8e8"/></svg>'
)


def storefront_routes(conn: sqlite3.Connection, templates: Jinja2Templates) -> list[Route]:
    def categories() -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT category_code, min(category) FROM products GROUP BY category_code "
                "ORDER BY category_code"
            )
        ]

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(
            request, name, {"categories": categories(), **context}, status_code=status
        )

    def not_found(request: Request) -> Response:
        return render(request, "shop_home.html", {"missing": True}, 404)

    async def home(request: Request) -> Response:
        return render(request, "shop_home.html", {})

    async def category(request: Request) -> Response:
        code = request.path_params["code"]
        name = dict(categories()).get(code)
        if name is None:
            return not_found(request)
        page = query_int(request, "page", 1)
        size = min(100, query_int(request, "per", CATEGORY_PAGE_SIZE))
        total = conn.execute(
            "SELECT count(*) FROM products WHERE category_code = ?", (code,)
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT product_id, title, page_price FROM products WHERE category_code = ? "
            "ORDER BY position LIMIT ? OFFSET ?",
            (code, size, (page - 1) * size),
        ).fetchall()
        pages = max(1, math.ceil(total / size))
        if request.query_params.get("fragment"):  # the cards a 加载更多 button appends
            return render(request, "shop_cards.html", {"products": rows})
        return render(
            request,
            "shop_category.html",
            {
                "code": code,
                "name": name,
                "products": rows,
                "page": page,
                "pages": pages,
                "total": total,
                "view": request.query_params.get("view", ""),
                "per": size,
            },
        )

    async def sitemap(request: Request) -> Response:
        """A sitemap index pointing at the product sitemap (as large shops split theirs)."""
        base = str(request.base_url).rstrip("/")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{base}/shop/sitemap-products.xml</loc></sitemap>"
            f"<sitemap><loc>{base}/shop/sitemap-pages.xml</loc></sitemap></sitemapindex>"
        )
        return Response(body, media_type="application/xml")

    async def sitemap_products(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        ids = [r[0] for r in conn.execute("SELECT product_id FROM products ORDER BY product_id")]
        locs = "".join(f"<url><loc>{base}/shop/p/{i}</loc></url>" for i in ids)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        )
        return Response(body, media_type="application/xml")

    async def sitemap_pages(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        locs = f"<url><loc>{base}/shop</loc></url>" + "".join(
            f"<url><loc>{base}/shop/c/{code}</loc></url>" for code, _ in categories()
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        )
        return Response(body, media_type="application/xml")

    async def product(request: Request) -> Response:
        p = conn.execute(
            "SELECT * FROM products WHERE product_id = ?", (request.path_params["product_id"],)
        ).fetchone()
        if p is None:
            return not_found(request)
        discount = Decimal(p["promo_discount"])
        discount_text = f"{discount * 10:g}折" if discount < 1 else ""
        return render(
            request,
            "shop_product.html",
            {
                "p": p,
                "alts": json.loads(p["image_alts"]),
                "detail_lines": p["detail"].split("\n"),
                "discount_text": discount_text,
            },
        )

    async def sku_api(request: Request) -> Response:
        p = conn.execute(
            "SELECT promo_discount, coupon_threshold, coupon_amount FROM products "
            "WHERE product_id = ?",
            (request.path_params["product_id"],),
        ).fetchone()
        if p is None:
            return JSONResponse({"error": "no such product"}, status_code=404)
        coupon = (
            (Decimal(p["coupon_threshold"]), Decimal(p["coupon_amount"]))
            if p["coupon_threshold"]
            else None
        )
        rows = conn.execute(
            "SELECT sku, name, price, list_price, stock FROM skus WHERE product_id = ? "
            "ORDER BY position",
            (request.path_params["product_id"],),
        ).fetchall()
        discount = Decimal(p["promo_discount"])
        skus = [
            {
                "sku": r["sku"],
                "name": r["name"],
                "price": f"{Decimal(r['price']):.2f}",
                "list_price": f"{Decimal(r['list_price']):.2f}",
                "final_price": f"{final_price(Decimal(r['price']), discount, coupon):.2f}",
                "stock": r["stock"],
            }
            for r in rows
        ]
        return JSONResponse({"skus": skus})

    async def image(request: Request) -> Response:
        return Response(_SVG, media_type="image/svg+xml")

    return [
        Route("/shop", home),
        Route("/shop/sitemap.xml", sitemap),
        Route("/shop/sitemap-products.xml", sitemap_products),
        Route("/shop/sitemap-pages.xml", sitemap_pages),
        Route("/shop/c/{code}", category),
        Route("/shop/p/{product_id}", product),
        Route("/shop/api/products/{product_id}/skus", sku_api),
        Route("/shop/img/{product_id}/{n}.svg", image),
    ]
