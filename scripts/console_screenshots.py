"""Screenshots of the console for docs/console.md: a seeded sandbox shop, one refunds run,
a reviewer deciding the queue in the console, each page as it shows.

    .venv/bin/python scripts/console_screenshots.py     # writes docs/console/*.png
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from record_screenshots import BIN, free_port, wait_for  # noqa: E402

OUT = ROOT / "docs" / "console"
REVIEWER, PASSWORD = "wangfang", "console-shots-pw"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="console-shots-"))
    procs: list[subprocess.Popen[bytes]] = []
    robots = str(BIN / "robots")
    try:
        data, ws = tmp / "shop", tmp / "ws"
        shop_pw = "console-shots-shop"
        seed = [robots, "sandbox", "seed", "--data", str(data), "--refunds", "150"]
        subprocess.run([*seed, "--password", shop_pw], check=True)
        port = free_port()
        procs.append(
            subprocess.Popen(
                [robots, "sandbox", "serve", "--data", str(data), "--port", str(port), "--control"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{port}/"
        wait_for(url + "healthz")
        ws.mkdir()
        shutil.copy(ROOT / "scenarios" / "demo-shop" / "refunds.toml", ws / "refunds.toml")
        creds = ws / "credentials.toml"
        creds.write_text(f'[demo-shop]\nusername = "robot"\npassword = "{shop_pw}"\n')
        creds.chmod(0o600)
        (ws / "robots.toml").write_text(
            f'[paths]\ncredentials_file = "{creds}"\n\n[[targets]]\nname = "shop"\n'
            f'robot = "refunds"\nscenario = "refunds.toml"\nbase_url = "{url}"\n'
            '\n[[schedules]]\nname = "refunds-nightly"\ntarget = "shop"\ncron = "0 3 * * *"\n'
            '\n[[schedules]]\nname = "refunds-hourly-dry"\ntarget = "shop"\n'
            'every_seconds = 3600\nargs = ["--dry-run"]\nworking_days_only = true\n'
        )
        subprocess.run([robots, "run", "refunds", "-w", str(ws), "--limit", "40"], check=False)
        for name, role in ((REVIEWER, "reviewer"), ("zhaolei", "operator")):
            subprocess.run(
                [robots, "console", "users", "add", name, "--role", role, "--password-stdin",
                 "-w", str(ws)],
                input=PASSWORD.encode() + b"\n",
                check=True,
            )  # fmt: skip
        cport = free_port()
        procs.append(subprocess.Popen([robots, "console", "-w", str(ws), "--port", str(cport)]))
        console = f"http://127.0.0.1:{cport}"
        wait_for(console + "/")
        shoot(console, url)
    finally:
        for p in reversed(procs):
            p.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def shoot(console: str, shop: str) -> None:
    from playwright.sync_api import sync_playwright

    from robots.runtime.browser import CHROMIUM_FLAGS, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(None, None), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(console + "/")
        page.screenshot(path=str(OUT / "1-login.png"))
        for name in (REVIEWER, "zhaolei"):
            if name == "zhaolei":
                page.click("header form.who button")
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("header nav")
            if name == REVIEWER:
                page.screenshot(path=str(OUT / "2-overview.png"))
                page.goto(console + "/queue")
                selects = page.locator("table.queue select")
                selects.nth(0).select_option("approve")
                selects.nth(1).select_option("hold")
                page.locator("table.queue input").nth(1).fill("等买家补充照片")
                page.screenshot(path=str(OUT / "3-queue.png"), full_page=False)
                page.click("button.primary")
                page.wait_for_selector("h1:text('处理结果')", timeout=300_000)
                page.screenshot(path=str(OUT / "4-decided.png"))
                page.goto(console + "/runs")
                page.screenshot(path=str(OUT / "5-runs.png"))
                page.locator("table a").first.click()
                page.screenshot(path=str(OUT / "6-run.png"))
        page.goto(console + "/schedules")
        page.click("tr[data-schedule=refunds-hourly-dry] button.pause")
        page.wait_for_url("**/schedules")
        page.screenshot(path=str(OUT / "9-schedules.png"))
        page.goto(console + "/audit")
        page.screenshot(path=str(OUT / "7-audit.png"))
        # a run started here, seen while it runs (every refund page answers 0.5 s late)
        body = {"path_prefix": "/refunds/RF", "count": 100000, "status": 0, "delay_s": 0.5}
        httpx.post(shop + "_sandbox/faults", json=body).raise_for_status()
        page.goto(console + "/runs")
        page.click("form.start button")
        running = page.locator("tr[data-run]:has(td.status:text-is('运行中')) a")
        for _ in range(100):
            if running.count():
                break
            page.wait_for_timeout(300)
            page.reload()
        running.first.click()
        page.wait_for_timeout(4000)
        page.reload()
        page.screenshot(path=str(OUT / "8-running.png"))
        page.click("button.danger")
        browser.close()


if __name__ == "__main__":
    main()
