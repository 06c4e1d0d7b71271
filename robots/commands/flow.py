"""`robots flow new`: start a flow file from a live list page (``robots.flow.scaffold``);
`robots flow list`: the workspace's flows (``robots.flow.catalogue``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from robots.commands import WorkspaceOpt, authoring_browser, console

app = typer.Typer(help="Author flows: jobs written as files (docs/flows.md).")


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The flow's name: its file is <name>.toml.")],
    list_url: Annotated[
        str, typer.Option(help="The list page its items come from (a URL, or a path).")
    ],
    target: Annotated[
        str, typer.Option(help="A target whose scenario's shop and login the flow uses.")
    ],
    title: Annotated[str | None, typer.Option(help="The job as ops read it (物流异常).")] = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Open the list page, find its rows, and write scenarios/<shop>/flows/<name>.toml: the
    list as the flow's source, a page to fill in, one rule that records every item."""
    from robots.config import LoginPage
    from robots.errors import ConfigError, map_foreign
    from robots.flow.scaffold import FIND_JS, flow_text, list_address, table_text
    from robots.flow.scenario import load
    from robots.runtime.browser import LoginForm, goto

    ws, shop, login, credential, out = _authoring(workspace, target, name, "robots flow new")
    base = str(shop.get("base_url", ""))
    url = list_address(base, list_url)

    async def find() -> dict | None:
        async with authoring_browser(ws) as session:
            if login is not None and credential is not None:
                await session.login(LoginForm.at(base, LoginPage(**login)), credential)
            page = await (await session.new_context()).new_page()
            await goto(page, url, login_path=(login or {}).get("path", "/login"))
            found: dict | None = await page.evaluate(FIND_JS)
            return found

    with map_foreign(f"the shop at {base}"):
        found = asyncio.run(find())
    if found is None:
        raise ConfigError(
            f"no list on {url}: no table with rows, nor a repeated element with data attributes",
            file="robots flow new",
            key="--list-url",
        )
    if not found["data"] and not found["headers"]:
        raise ConfigError(
            f"the rows of {found['row']!r} on {url} carry no data attributes and no column "
            "headers to name fields by; write the flow's [source] by hand (docs/flows.md)",
            file="robots flow new",
            key="--list-url",
        )
    login_toml = table_text("login", login) if login is not None else ""
    text = flow_text(title or name, url, found, table_text("shop", shop), login_toml)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    load(out)  # what config check says of it: the scaffold must pass
    console.print(f"written: {out} ({found['rows']} rows of {found['row']!r} on {url})")
    console.print(f"next: robots scenario probe --robot flow --scenario {out}")


def _authoring(workspace: Path, target: str, name: str, command: str) -> tuple[Any, ...]:
    """What a flow is written from: the workspace, the target scenario's ``[shop]`` (its
    address as the target says) and ``[login]``, the credential, and the new file's path."""
    import re

    from robots.config import read_toml
    from robots.errors import ConfigError
    from robots.registry import load_workspace

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ConfigError(
            "a flow's name is letters, digits, - and _ (it names its file and its items)",
            file=command,
            key="NAME",
        )
    ws = load_workspace(workspace)
    chosen = ws.target_named(target)
    scenario = ws.path(chosen.scenario)
    data = read_toml(scenario)
    shop = dict(data.get("shop", {}))
    if chosen.base_url is not None:
        shop["base_url"] = str(chosen.base_url)
    login = data.get("login")
    out = scenario.parent / "flows" / f"{name}.toml"
    if out.exists():
        raise ConfigError(f"{out} exists; choose another name", file=str(out))
    credential = ws.credentials().get(shop["credential"]) if login else None
    return ws, shop, login, credential, out


@app.command("record")
def record(
    url: Annotated[str, typer.Argument(help="The list page to start on (a URL, or a path).")],
    target: Annotated[
        str, typer.Option(help="A target whose scenario's shop and login the flow uses.")
    ],
    flow: Annotated[str, typer.Option(help="The flow's name: its file is <name>.toml.")],
    title: Annotated[str | None, typer.Option(help="The job as ops read it (商品下架).")] = None,
    debug_port: Annotated[
        int | None, typer.Option(hidden=True, help="Chrome remote debugging (tests).")
    ] = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Open the list page in a visible browser, logged in, and write the flow the person
    does: open a row, Alt+click the values to read, act, Alt+click the value that shows it
    took, then 完成录制 (docs/flows.md, Record a flow)."""
    from robots.config import LoginPage
    from robots.errors import ConfigError, map_foreign
    from robots.flow.recorder import flow_from_recording
    from robots.flow.recorder import record as recording
    from robots.flow.scaffold import list_address, table_text
    from robots.flow.scenario import load
    from robots.runtime.browser import LoginForm

    ws, shop, login, credential, out = _authoring(workspace, target, flow, "robots flow record")
    base = str(shop.get("base_url", ""))
    address = list_address(base, url)
    browser = ws.config.browser

    async def session() -> Any:
        cookies: list[dict[str, Any]] = []
        if login is not None and credential is not None:
            async with authoring_browser(ws) as s:
                await s.login(LoginForm.at(base, LoginPage(**login)), credential)
                cookies = s.cookies
        console.print(f"recording on {address}: open a row, Alt+click values, act, 完成录制")
        rec = await recording(
            executable=browser.executable,
            timeout_ms=browser.timeout_ms,
            list_url=address,
            cookies=cookies,
            debug_port=debug_port,
        )
        if credential is not None:
            rec.secrets = tuple(s for s in (credential.username, credential.password) if s)
        return rec

    with map_foreign(f"the shop at {base}"):
        rec = asyncio.run(session())
    login_toml = table_text("login", login) if login is not None else ""
    text = flow_from_recording(
        rec, title=title or flow, shop=table_text("shop", shop), login=login_toml
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    problems = load(out).problems()  # what config check says of it: kept to mend by hand
    if problems:
        key, what = problems[0]
        raise ConfigError(
            f"the recorded flow does not pass config check: {key}: {what}", file=str(out), key=key
        )
    console.print(f"written: {out} ({len(rec.events)} things recorded)")
    console.print(f"next: robots config check; robots run flow {flow} --dry-run")


@app.command("list")
def list_flows(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The catalogue page (docs/catalogue.md) instead.")
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """The workspace's flows (its targets' and scenarios/*/flows/*.toml): what each does,
    where its items come from, its actions and its targets."""
    from rich.table import Table

    from robots.flow.catalogue import actions_said, entries, source_said
    from robots.flow.catalogue import markdown as catalogue
    from robots.registry import load_workspace

    ws = load_workspace(workspace)
    found = entries(ws)
    if markdown:
        print(catalogue(found, ws.root))
        return
    table = Table("flow", "title", "what it does", "items from", "actions", "targets")
    for e in found:
        if e.flow is None:
            table.add_row(e.name, "", f"[red]does not load: {e.problem}[/]", "", "", "")
            continue
        f = e.flow
        table.add_row(
            e.name, f.title, f.description, source_said(f), actions_said(f), ", ".join(e.targets)
        )
    console.print(table)
    console.print(f"{len(found)} flows; run one with robots run flow NAME")
