"""Bad input gets a clear error, not a traceback: a corpus of broken files, values and options.

Each case breaks one thing and runs the real CLI. It must exit non-zero, print first a line
``Kind: file: key: what is wrong`` naming the file (and the key where there is one), show no
traceback, and change nothing: no run is recorded in the ledger (the shop address is a port
where nothing listens, so no shop could be changed either).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from conftest import PAGESCAN_SCENARIO, SCENARIO, dead_port, robot_env, robots_cmd
from openpyxl import Workbook

RETURNS_SCENARIO = SCENARIO.parent / "returns.toml"
DEAD = f"http://127.0.0.1:{dead_port()}/"


@dataclass
class Ws:
    """A workspace under construction: robots.toml, a refunds scenario, credentials."""

    root: Path

    @property
    def toml(self) -> Path:
        return self.root / "robots.toml"

    def edit(self, old: str, new: str, file: Path | None = None) -> None:
        file = file or self.toml
        text = file.read_text(encoding="utf-8")
        assert old in text, (file, old)
        file.write_text(text.replace(old, new, 1), encoding="utf-8")

    def add(self, text: str, file: Path | None = None) -> None:
        file = file or self.toml
        file.write_text(file.read_text(encoding="utf-8") + "\n" + text + "\n", encoding="utf-8")


def make(root: Path, *, robot: str = "refunds", scenario: Path | None = None) -> Ws:
    root.mkdir(parents=True, exist_ok=True)
    source = scenario or {"refunds": SCENARIO, "pagescan": PAGESCAN_SCENARIO}.get(
        robot, RETURNS_SCENARIO
    )
    scn = root / f"{robot}.toml"
    text = source.read_text(encoding="utf-8")
    if robot == "pagescan":
        price_list = root / "price-list.xlsx"
        wb = Workbook()
        sheet = wb.active
        assert sheet is not None
        sheet.title = "价格表"
        sheet.append(["SKU", "款号", "品名", "核准价", "成本价", "最低价", "吊牌价", "尺码加价"])
        sheet.append(["A-1", "A", "衬衫", 100, 50, 80, 199, 0])
        wb.save(price_list)
        for name in ("banned-words.txt", "allowlist.txt"):
            (root / name).write_text(
                (PAGESCAN_SCENARIO.parent / name).read_text(encoding="utf-8"), encoding="utf-8"
            )
        text = text.replace('"../../var/sandbox/price-list.xlsx"', json.dumps(str(price_list)))
    scn.write_text(text, encoding="utf-8")
    creds = root / "secrets" / "credentials.toml"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(
        '[demo-shop]\nusername = "robot"\npassword = "pw-123456"\n'
        '[demo-warehouse]\nusername = "wh"\npassword = "pw-123456"\n',
        encoding="utf-8",
    )
    creds.chmod(0o600)
    (root / "robots.toml").write_text(
        f"""[paths]
credentials_file = "{creds}"

[browser]
timeout_ms = 2000

[retry]
attempts = 1
wait_initial_s = 0
wait_max_s = 0

[[targets]]
name = "t"
robot = "{robot}"
scenario = "{scn}"
base_url = "{DEAD}"
""",
        encoding="utf-8",
    )
    return Ws(root)


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # builds the workspace, returns the CLI arguments
    first: str  # a regex the first line of stderr must match
    code: int = 2


CASES: list[Case] = []


def case(id: str, first: str, code: int = 2) -> Callable[[Callable[[Path], list[str]]], None]:
    def register(setup: Callable[[Path], list[str]]) -> None:
        CASES.append(Case(id, setup, first, code))

    return register


def run_refunds(root: Path) -> list[str]:
    return ["run", "refunds", "-w", str(root)]


def run_pagescan(root: Path) -> list[str]:
    return ["run", "pagescan", "-w", str(root)]


def run_returns(root: Path) -> list[str]:
    return ["run", "returns", "-w", str(root)]


def config_check(root: Path) -> list[str]:
    return ["config", "check", "-w", str(root)]


ARGS = {
    "run refunds": run_refunds,
    "run pagescan": run_pagescan,
    "run returns": run_returns,
    "config check": config_check,
}
DATA = tomllib.loads(
    (Path(__file__).parent / "bad_inputs.toml").read_text(encoding="utf-8").replace("{dead}", DEAD)
)


def _file_of(row: dict[str, str]) -> str:
    """robots.toml, unless the row names a file (or its robot's scenario)."""
    default = "robots.toml" if row["robot"] == "refunds" else f"{row['robot']}.toml"
    return row.get("file") or default


def _value(root: Path, row: dict[str, str]) -> list[str]:
    """One value of robots.toml or a scenario broken (``bad_inputs.toml`` [[values]])."""
    ws = make(root, robot=row["robot"])
    file = root / _file_of(row)
    if row["old"]:
        ws.edit(row["old"], row["new"], file)
    else:
        before = SCHEDULE if row.get("before") == "SCHEDULE" else row.get("before", "")
        ws.add(before + row["new"], file)
    return ARGS[row["args"]](root)


def _file(root: Path, row: dict[str, str]) -> list[str]:
    """A file that is a folder, missing, not UTF-8 or not what it should hold ([[files]])."""
    make(root, robot="refunds" if row["robot"] == "apply" else row["robot"])
    path = root / row["file"]
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    becomes = row.get("becomes")
    if becomes == "<a folder>":
        path.mkdir()
    elif "hex" in row:
        path.write_bytes(bytes.fromhex(row["hex"]))
    elif becomes != "<no file>":
        path.write_text(str(becomes), encoding="utf-8")
    if path.is_file():
        path.chmod(0o600)  # a credentials file others can read is warned about first
    if row["robot"] == "apply":
        return ["apply", str(path), "-w", str(root)]
    return ARGS[f"run {row['robot']}"](root)


for _row in DATA["values"]:
    _first = rf"^ConfigError: .*{re.escape(_file_of(_row))}: {re.escape(_row['key'])}"
    CASES.append(Case(_row["case"], partial(_value, row=_row), _first))
for _row in DATA["files"]:
    _kind = "InvalidReview" if _row["robot"] == "apply" else "ConfigError"
    _kind = "CredentialError" if _row["file"].endswith("credentials.toml") else _kind
    CASES.append(Case(_row["case"], partial(_file, row=_row), rf"^{_kind}: .*{_row['first']}"))


# -- robots.toml as a file --------------------------------------------------------------------
@case("workspace file missing", r"^ConfigError: .*robots\.toml: file not found")
def _(root: Path) -> list[str]:
    root.mkdir()
    return run_refunds(root)


@case("workspace unknown table", r"^ConfigError: .*robots\.toml: browsr: unknown key")
def _(root: Path) -> list[str]:
    make(root).add("[browsr]\nheadless = true")
    return run_refunds(root)


@case("no refunds target", r"^ConfigError: .*robots\.toml: targets: no enabled target with robot")
def _(root: Path) -> list[str]:
    make(root, robot="pagescan")
    return run_refunds(root)


@case("unknown target name", r"^ConfigError: .*robots\.toml: targets: no enabled refunds target")
def _(root: Path) -> list[str]:
    make(root)
    return [*run_refunds(root), "--target", "nope"]


# -- robots.toml values -------------------------------------------------------------------------


SCHEDULE = '[[schedules]]\nname = "s"\ntarget = "t"\n'


# -- where a run writes -----------------------------------------------------------------------
def _path(root: Path, row: dict[str, str]) -> list[str]:
    """A [paths] value that cannot be a folder (``bad_inputs.toml`` [[paths]])."""
    ws = make(root)
    blocker = root / row["blocker"]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    if row["blocker_is"] == "folder":
        blocker.mkdir()
    else:
        blocker.write_text("x", encoding="utf-8")
    ws.edit("[paths]\n", f'[paths]\n{row["key"]} = "{row["value"]}"\n')
    return run_refunds(root)


for _row in DATA["paths"]:
    _first = rf"^ConfigError: .*robots\.toml: paths\.{_row['key']}: .* is a {_row['shows']}"
    CASES.append(Case(_row["case"], partial(_path, row=_row), _first))


@case("runs with a ledger folder that is a file", r"^ConfigError: .*paths\.ledger")
def _(root: Path) -> list[str]:
    make(root)
    (root / "state").write_text("x", encoding="utf-8")
    return ["runs", "-w", str(root)]


# -- the refunds scenario ---------------------------------------------------------------------
@case("scenario missing", r"^ConfigError: .*robots\.toml: targets\.0\.scenario: scenario file")
def _(root: Path) -> list[str]:
    make(root)
    (root / "refunds.toml").unlink()
    return run_refunds(root)


@case("scenario option is a folder", r"^ConfigError: .*elsewhere: is a folder")
def _(root: Path) -> list[str]:
    make(root)
    (root / "elsewhere").mkdir()
    return [*run_refunds(root), "--scenario", str(root / "elsewhere")]


@case("scenario option missing", r"^ConfigError: .*nowhere\.toml: file not found")
def _(root: Path) -> list[str]:
    make(root)
    return [*run_refunds(root), "--scenario", str(root / "nowhere.toml")]


@case("scenario base_url", r"^ConfigError: .*refunds\.toml: shop\.base_url")
def _(root: Path) -> list[str]:
    ws = make(root)
    ws.edit('base_url = "http://127.0.0.1:8765/"', 'base_url = "localhost"', root / "refunds.toml")
    return [*run_refunds(root), "--scenario", str(root / "refunds.toml")]


# -- the page scan's scenario and inputs -------------------------------------------------------


@case("price list text price", r"^ConfigError: .*price-list\.xlsx: sheet .*row 3, column D")
def _(root: Path) -> list[str]:
    make(root, robot="pagescan")
    from openpyxl import load_workbook

    wb = load_workbook(root / "price-list.xlsx")
    sheet = wb.active
    assert sheet is not None
    sheet.append(["B-1", "B", "裤子", "¥199", 50, 80, 199, 0])
    wb.save(root / "price-list.xlsx")
    return run_pagescan(root)


@case("price list missing column", r"^ConfigError: .*price-list\.xlsx: sheet .*missing column")
def _(root: Path) -> list[str]:
    make(root, robot="pagescan")
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = "价格表"
    sheet.append(["SKU", "款号", "品名", "成本价"])
    sheet.append(["A-1", "A", "衬衫", 50])
    wb.save(root / "price-list.xlsx")
    return run_pagescan(root)


# -- the returns scenario -----------------------------------------------------------------------


# -- credentials and the vault ---------------------------------------------------------------
@case("credential missing", r"^CredentialError: no credential named 'demo-shop'")
def _(root: Path) -> list[str]:
    make(root)
    (root / "secrets" / "credentials.toml").write_text('[other]\nusername = "x"\n')
    return run_refunds(root)


def vault(root: Path, content: object | None, *, folder: bool = False) -> list[str]:
    make(root)
    (root / "secrets" / "credentials.toml").write_text("")
    file = root / "credentials" / "vault.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        file.mkdir()
    else:
        file.write_text(content if isinstance(content, str) else json.dumps(content))
    return run_refunds(root)


@case("vault file is a folder", r"^VaultError: .*vault\.json: not a file")
def _(root: Path) -> list[str]:
    return vault(root, None, folder=True)


@case("vault not JSON", r"^VaultError: .*vault\.json is not a vault file \(not JSON")
def _(root: Path) -> list[str]:
    return vault(root, "{credentials: [")


@case("vault without credentials table", r"^VaultError: .*vault\.json is not a vault file")
def _(root: Path) -> list[str]:
    return vault(root, {"version": 1, "credentials": []})


@case("vault entry is a string", r"^VaultError: .*vault\.json: credentials\.demo-shop: expected")
def _(root: Path) -> list[str]:
    return vault(root, {"version": 1, "check": "", "credentials": {"demo-shop": "gAAAA"}})


@case("vault entry without token", r"^VaultError: .*vault\.json: credentials\.demo-shop: expected")
def _(root: Path) -> list[str]:
    return vault(
        root, {"version": 1, "check": "", "credentials": {"demo-shop": {"updated_at": "x"}}}
    )


@case("vault numeric check", r"^VaultError: .*vault\.json: check: expected")
def _(root: Path) -> list[str]:
    return vault(root, {"version": 1, "check": 7, "credentials": {"demo-shop": {"token": "t"}}})


@case("vault without a key", r"^VaultError: no vault key")
def _(root: Path) -> list[str]:
    return vault(
        root, {"version": 1, "check": "", "credentials": {"demo-shop": {"token": "gAAAA"}}}
    )


# -- reviewed workbooks --------------------------------------------------------------------------
def apply_args(root: Path, file: Path) -> list[str]:
    return ["apply", str(file), "-w", str(root)]


@case("apply a workbook of another kind", r"^InvalidReview: .*other\.xlsx: 1 problem")
def _(root: Path) -> list[str]:
    make(root)
    wb = Workbook()
    wb.save(root / "other.xlsx")
    return apply_args(root, root / "other.xlsx")


# -- other commands -------------------------------------------------------------------------------
@case("runs show unknown id", r"^UnknownRun: no run 'nope'")
def _(root: Path) -> list[str]:
    make(root)
    return ["runs", "show", "nope", "-w", str(root)]


@case(
    "probe a robot that has no probe", r"^ConfigError: .*the pagescan robot has no scenario probe"
)
def _(root: Path) -> list[str]:
    make(root, robot="pagescan")
    return ["scenario", "probe", "--target", "t", "-w", str(root)]


@case("probe a shop that is down", r"^SystemException: could not work with the shop at", code=1)
def _(root: Path) -> list[str]:
    make(root)
    return ["scenario", "probe", "--target", "t", "-w", str(root)]


@case("probe an unknown target", r"^ConfigError: .*robots\.toml: targets: no target named 'nope'")
def _(root: Path) -> list[str]:
    make(root)
    return ["scenario", "probe", "--target", "nope", "-w", str(root)]


@case("report with neither a run nor --open", r"^ConfigError: robots report: RUN: say which")
def _(root: Path) -> list[str]:
    make(root)
    return ["report", "-w", str(root)]


@case("report of an unknown run", r"^UnknownRun: no run 'nope'")
def _(root: Path) -> list[str]:
    make(root)
    return ["report", "nope", "-w", str(root)]


@case(
    "open-exceptions path is a folder",
    r"^ConfigError: .*robots\.toml: paths\.open_exceptions: .* is a folder",
)
def _(root: Path) -> list[str]:
    ws = make(root)
    (root / "queue.xlsx").mkdir()
    ws.edit("[paths]\n", '[paths]\nopen_exceptions = "queue.xlsx"\n')
    return ["run", "refunds", "-w", str(root)]


@case("config check bad scenario", r"^ConfigError: .*refunds\.toml: policy\.max_auto_amount")
def _(root: Path) -> list[str]:
    make(root).edit("max_auto_amount = 300", "max_auto_amount = 0", root / "refunds.toml")
    return ["config", "check", "-w", str(root)]


@case("scheduler without schedules folder file", r"^ConfigError: .*robots\.toml: paths\.logs")
def _(root: Path) -> list[str]:
    ws = make(root)
    (root / "logfile").write_text("x", encoding="utf-8")
    ws.edit("[paths]\n", '[paths]\nlogs = "logfile"\n')
    ws.add(SCHEDULE + "every_seconds = 60")
    return ["scheduler", "start", "-w", str(root)]


@case(
    "pagescan price list with cluster",
    r"^ConfigError: robots run pagescan: --price-list: the cluster's workers check",
)
def _(root: Path) -> list[str]:
    make(root, robot="pagescan")
    return [*run_pagescan(root), "--cluster", "--price-list", str(root / "price-list.xlsx")]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 80, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_line(tmp_path: Path, bad: Case) -> None:
    root = tmp_path / "ws"
    args = bad.setup(root)
    result = subprocess.run(
        robots_cmd(*args),
        capture_output=True,
        text=True,
        timeout=120,
        env=robot_env(COLUMNS="400"),
        stdin=subprocess.DEVNULL,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == bad.code, result.stderr
    assert lines, "nothing on stderr"
    assert re.search(bad.first, lines[0]), lines[0]
    assert "Traceback" not in result.stderr, result.stderr
    ledger = root / "state" / "ledger.sqlite3"
    if ledger.is_file():  # nothing was done: no run recorded, no item touched
        with sqlite3.connect(ledger) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "runs" in tables:
                assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
            if "work_items" in tables:
                assert conn.execute("SELECT count(*) FROM work_items").fetchone()[0] == 0
