"""`robots flow list`: the flows a workspace has (its targets' and the files under
``scenarios/*/flows/``), each with what it does, where its items come from, what it reads,
its rules and its actions; ``markdown`` writes the same as the catalogue page
(docs/catalogue.md)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robots.errors import ConfigError
from robots.flow.scenario import FileSource, FlowFile, FlowSource, load

FILES = "scenarios/*/flows/*.toml"


@dataclass
class Entry:
    """One flow file: loaded, or why it does not load."""

    file: Path
    flow: FlowFile | None
    targets: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def name(self) -> str:
        return self.file.stem


def entries(ws: Any) -> list[Entry]:
    """The workspace's flows: its targets' flow files, then the other files under
    ``scenarios/*/flows/``, by name."""
    found: dict[Path, Entry] = {}
    files = [ws.path(t.scenario).resolve() for t in ws.config.targets if t.robot == "flow"]
    files += sorted(p.resolve() for p in ws.root.glob(FILES))
    for file in files:
        if file in found:
            continue
        try:
            found[file] = Entry(file, load(file))
        except ConfigError as exc:
            found[file] = Entry(file, None, problem=str(exc).splitlines()[0])
    for t in ws.config.targets:
        if t.robot == "flow":
            found[ws.path(t.scenario).resolve()].targets.append(t.name)
    return sorted(found.values(), key=lambda e: e.name)


def source_said(flow: FlowFile) -> str:
    """Where the items come from, in a few words."""
    source = flow.source
    if isinstance(source, FileSource):
        return f"file {source.file.name}" + (f" (sheet {source.sheet})" if source.sheet else "")
    assert isinstance(source, FlowSource)
    each = "".join(f", one list per {n}" for n in source.for_each)
    return f"list {source.path}{each}"


def actions_said(flow: FlowFile) -> str:
    return ", ".join(flow.actions) or "none (changes nothing)"


def markdown(found: list[Entry], root: Path) -> str:
    """The catalogue page: every flow, what it does, its source, fields, rules, actions."""
    out = [
        "# Flow catalogue",
        "",
        "Every flow shipped in `scenarios/demo-shop/flows/`, as `robots flow list --markdown`",
        "writes it (a test keeps this page equal to the files). Copy one beside your shop's",
        "scenarios and change the selectors, words and numbers: [Flows](flows.md) explains",
        "each part.",
        "",
    ]
    for e in found:
        rel = e.file.relative_to(root) if e.file.is_relative_to(root) else e.file
        if e.flow is None:
            out += [f"## {e.name}", "", f"`{rel}` does not load: {e.problem}", ""]
            continue
        flow = e.flow
        out += [f"## {flow.title} ({e.name})", "", flow.description or "(no description)", ""]
        out += [
            f"- file: `{rel}`",
            f"- items from: {source_said(flow)}; key `{flow.source.key}`",
            f"- actions: {actions_said(flow)}",
            "",
            "| field | where | type |",
            "|---|---|---|",
        ]
        tables = [("row", flow.source.fields, flow.row_kinds)]
        if flow.page is not None:
            tables.append(("page", flow.page.fields, flow.page_kinds))
        headers = flow.source.headers if isinstance(flow.source, FileSource) else {}
        for where, specs, kinds in tables:
            for name, spec in specs.items():
                attribute = f"{spec.selector} @{spec.attribute}" if spec.attribute else ""
                at = headers.get(name) or spec.label or attribute or spec.selector or ""
                shown = f"{where}.{name}"
                out.append(f"| `{shown}` | {_cell(at)} | {kinds[name].type} |")
        if flow.words is not None:  # the word classes, as the rules' hits name them
            w = flow.words
            out += ["", f"Words found in `{w.text}` (`hits`):", "", "| class | 名称 | words |"]
            out.append("|---|---|---|")
            for kind, c in w.classes.items():
                out.append(f"| `{kind}` | {_cell(c.label)} | {_cell('、'.join(c.words))} |")
            if w.rise is not None:
                r = w.rise
                out += [
                    "",
                    f"Counted by the hour at `{w.time}`; an alert when the last hour rises "
                    f"+{r.warning:.0%} (warning) or +{r.severe:.0%} (critical) over the average "
                    f"of the {r.hours} before it, given {r.least:g} hits an hour or more.",
                ]
        out += ["", "| # | when | then |", "|---|---|---|"]
        for n, rule in enumerate(flow.rules, 1):
            if rule.hand_over is not None:
                then = f"to a person: {rule.hand_over.code} {rule.hand_over.text}"
            elif rule.act is not None:
                then = f"act: {rule.act}"
            else:
                then = rule.outcome
            if rule.note:
                then += f" (标记 {rule.note})"
            out.append(f"| {n} | {_code(' '.join(rule.when.split()))} | {_cell(then)} |")
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """Code in a table cell: a ``|`` in it (CEL's ``||``) would end the cell, and a code
    span would show its escape; an HTML code element shows the entity as the character."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"
