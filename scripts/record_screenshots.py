"""The screenshots of docs/flows.md's "Record a flow": a sandbox seeded and served, the
recorder run on an Xvfb display, its browser driven as a person would (through Chrome's
remote debugging), each step shot into docs/record/. Run from the checkout:

    .venv/bin/python scripts/record_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "record"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="record-shots-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        data, ws = tmp / "shop", tmp / "ws"
        password = "record-shots-pw"
        robots = str(BIN / "robots")
        seed = [robots, "sandbox", "seed", "--data", str(data), "--refunds", "5"]
        subprocess.run([*seed, "--products", "12", "--password", password], check=True)
        port = free_port()
        procs.append(
            subprocess.Popen(
                [robots, "sandbox", "serve", "--data", str(data), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{port}/"
        wait_for(url + "healthz")
        ws.mkdir()
        shutil.copy(ROOT / "scenarios" / "demo-shop" / "refunds.toml", ws / "refunds.toml")
        creds = ws / "credentials.toml"
        creds.write_text(f'[demo-shop]\nusername = "robot"\npassword = "{password}"\n')
        creds.chmod(0o600)
        (ws / "robots.toml").write_text(
            f'[paths]\ncredentials_file = "{creds}"\n\n[[targets]]\nname = "shop"\n'
            f'robot = "refunds"\nscenario = "refunds.toml"\nbase_url = "{url}"\n'
        )
        from sandbox.xvfb import Xvfb

        xvfb = Xvfb("1100x640x24")
        procs.append(xvfb.process)
        display = xvfb.display
        debug = free_port()
        record = [robots, "flow", "record", "/admin/skus?q=DR", "--target", "shop"]
        record += ["--flow", "delist", "--title", "商品下架", "--debug-port", str(debug)]
        recorder = subprocess.Popen(
            [*record, "-w", str(ws)], env={**os.environ, "DISPLAY": display}
        )
        procs.append(recorder)
        drive(debug)
        recorder.wait(60)
        flow = ws / "flows" / "delist.toml"
        print(flow.read_text(encoding="utf-8"))
    finally:
        for p in reversed(procs):
            p.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def drive(debug: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        for _ in range(200):
            try:
                browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{debug}")
                pages = [p for c in browser.contexts for p in c.pages if "/admin/skus" in p.url]
                if pages:
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.3)
        page = pages[0]
        page.wait_for_selector("#robots-recorder-bar")
        page.screenshot(path=str(OUT / "1-list.png"))
        page.locator("tr.sku-row a").first.click()
        page.wait_for_selector("#robots-recorder-bar")
        page.click("dd.price", modifiers=["Alt"])
        page.click("dd.state", modifiers=["Alt"])
        page.screenshot(path=str(OUT / "2-fields.png"))
        page.click("#delist")
        page.wait_for_selector(".flash.ok")
        page.wait_for_selector("#robots-recorder-bar")
        page.click("dd.state", modifiers=["Alt"])
        page.click(".flash.ok", modifiers=["Alt"])
        page.screenshot(path=str(OUT / "3-landed.png"))
        page.click("#robots-recorder-done")


if __name__ == "__main__":
    main()
