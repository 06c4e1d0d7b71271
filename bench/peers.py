"""Benchmark: the refunds robot against its peers, on fresh copies of one seeded shop.

    python bench/peers.py [--refunds 600] [--seed 11] [--rounds 1] [--latency-ms 150]

The peers do the same flow against the same shop and decide with the same policy:

- **plain HTTP** (httpx + lxml): the ceiling a UI robot can approach;
- **Selenium** (Debian's chromium-driver) written the way Selenium robots commonly are: one
  ``find_element`` per field, ``WebDriverWait`` for the dialog and the notice;
- **Selenium, one script call**: the same robot reading every field with one
  ``execute_script``; and that robot again on the headless shell the robot itself takes
  (Debian's ``chromium-headless-shell``), to separate what the browser binary is worth from
  what the robot's way of driving it is worth.

Every variant runs in a process of its own (its CPU, with Chromium's, counted from the
kernel's accounting of the process tree); the shop's CPU is counted apart. Rounds are
interleaved, each variant's approvals are checked against the ground truth before its
figure counts, and the machine's load average is printed beside the figures. With
``--latency-ms`` the shop waits that long before every answer, and the robot is measured
again with one page and with its automatic choice.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-" + "pw-4711"


def http_robot(url: str, scenario_file: Path, work: Path) -> int:
    """Same reads, same policy, same approvals, with no browser: returns decisions made."""
    import httpx
    from lxml import html as lxml_html

    from robots.refunds.backoffice import RefundBackOffice
    from robots.refunds.policy import Approve, decide
    from robots.refunds.scenario import load_refund_scenario

    sc = load_refund_scenario(scenario_file, base_url=url)
    office = RefundBackOffice(sc)
    decisions = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        page = lxml_html.fromstring(client.get(sc.login.path).text)
        token = page.cssselect("input[name=csrf_token]")[0].get("value")
        client.post(
            sc.login.path,
            data={"csrf_token": token, "username": "robot", "password": PASSWORD, "next": "/"},
        )
        listed: list[str] = []
        id_spec = sc.list.row_fields["refund_id"]  # the demo keeps it in an attribute
        for status in sc.shop.pending_statuses:
            next_url: str | None = urljoin(url, sc.list.path.format(status=status))
            while next_url:
                doc = lxml_html.fromstring(client.get(next_url).text)
                listed += [r.get(id_spec.attribute or "") for r in doc.cssselect(sc.list.row)]
                nxt = doc.cssselect(sc.list.next_page or "a[rel=next]")
                next_url = urljoin(url, nxt[0].get("href")) if nxt else None
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


def selenium_robot(
    url: str, scenario_file: Path, work: Path, *, one_call: bool = False, shell: bool = False
) -> int:
    """The flow as Selenium robots are commonly written; ``one_call``: every field of a page
    read with one ``execute_script`` (the same script the robot evaluates); ``shell``: on
    Debian's chromium-headless-shell instead of full Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from robots.engine.fields import READ_JS
    from robots.refunds.backoffice import RefundBackOffice
    from robots.refunds.policy import Approve, decide
    from robots.refunds.scenario import load_refund_scenario
    from robots.runtime.browser import CHROMIUM_FLAGS, find_chromium

    sc = load_refund_scenario(scenario_file, base_url=url)
    office = RefundBackOffice(sc)
    options = webdriver.ChromeOptions()
    # full Chromium with --headless=new, as Selenium robots are commonly run; or the same
    # headless shell the robot takes, to show what the browser binary alone is worth
    options.binary_location = find_chromium(None, None, headless=shell)
    for flag in [*CHROMIUM_FLAGS, "--headless" if shell else "--headless=new"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 15)
    css = By.CSS_SELECTOR
    decisions = 0
    try:
        driver.get(urljoin(url, sc.login.path))
        driver.find_element(css, sc.login.username).send_keys("robot")
        driver.find_element(css, sc.login.password).send_keys(PASSWORD)
        driver.find_element(css, sc.login.submit).click()
        wait.until(ec.presence_of_element_located((css, sc.login.logged_in)))
        listed: list[str] = []
        id_attribute = sc.list.row_fields["refund_id"].attribute or ""
        for status in sc.shop.pending_statuses:
            driver.get(urljoin(url, sc.list.path.format(status=status)))
            while True:
                rows = driver.find_elements(css, sc.list.row)
                listed += [r.get_attribute(id_attribute) or "" for r in rows]
                nxt = driver.find_elements(css, sc.list.next_page or "a[rel=next]")
                if not nxt:
                    break
                driver.get(nxt[0].get_attribute("href") or "")
        script = f"return ({READ_JS})(arguments[0]);"
        specs = office.reader.js_specs
        for refund_id in listed:
            driver.get(office.detail_url(refund_id))
            if one_call:
                raw = driver.execute_script(script, specs)
            else:
                raw = {}
                for name, spec in sc.detail.fields.items():
                    found = driver.find_elements(css, spec.selector)[: None if spec.all else 1]
                    raw[name] = [
                        (el.get_attribute(spec.attribute) or "")
                        if spec.attribute
                        else el.get_attribute("textContent") or ""
                        for el in found
                    ]
            refund = office.parse(raw)
            decision = decide(refund, sc.policy, office.clock.now())
            decisions += 1
            if isinstance(decision, Approve):
                driver.find_element(css, "#approve").click()
                wait.until(ec.visibility_of_element_located((css, "#confirm-dialog")))
                driver.find_element(css, "#confirm-approve").click()
                wait.until(ec.presence_of_element_located((css, "#action-notice")))
    finally:
        driver.quit()
    return decisions


VARIANTS = {
    "plain HTTP": http_robot,
    "Selenium": selenium_robot,
    "Selenium, one script call": lambda url, sc, work: selenium_robot(url, sc, work, one_call=True),
    "Selenium, one script call, headless shell": lambda url, sc, work: selenium_robot(
        url, sc, work, one_call=True, shell=True
    ),
}


def main() -> None:
    from refunds import Bench, bench_args

    args = bench_args(__doc__)
    with Bench(args.refunds, args.seed) as bench:
        figs = bench.rounds([*VARIANTS, "robot, 1 page", "robot, auto pages"], args.rounds)
        bench.ratios(
            figs,
            [
                ("robot, auto pages", "Selenium, one script call"),
                ("robot, auto pages", "Selenium, one script call, headless shell"),
                ("robot, auto pages", "Selenium"),
                ("robot, 1 page", "Selenium, one script call"),
                ("robot, auto pages", "plain HTTP"),
            ],
        )
        if args.latency_ms:
            far = ["robot, 1 page", "robot, auto pages", "Selenium, one script call"]
            slow = bench.rounds(far, args.rounds, latency_ms=args.latency_ms)
            bench.ratios(
                slow,
                [
                    ("robot, auto pages", "robot, 1 page"),
                    ("robot, auto pages", "Selenium, one script call"),
                ],
            )


if __name__ == "__main__":
    main()
