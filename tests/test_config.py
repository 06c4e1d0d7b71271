"""Bad robots.toml / scenario values: a clear error with file and key, exit code 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import SCENARIO, dead_port, robots_cmd, write_workspace

from robots.errors import ConfigError
from robots.refunds.scenario import load_refund_scenario
from robots.registry import load_workspace


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(robots_cmd(*args), capture_output=True, text=True, timeout=60)


def test_the_shipped_configuration_loads() -> None:
    root = Path(__file__).resolve().parent.parent
    ws = load_workspace(root)
    target = ws.target("refunds")
    assert target is not None
    scenario = load_refund_scenario(ws.path(target.scenario))
    assert scenario.policy.max_auto_amount == 300
    assert scenario.policy.daily_auto_total == 20000


@pytest.mark.parametrize(
    ("replace", "by", "key", "expected"),
    [
        (
            'parallel_pages = "auto"',
            "parallel_pages = 0",
            "browser.parallel_pages",
            'from 1 to 32, or "auto"',
        ),
        (
            'parallel_pages = "auto"',
            'parallel_pages = "many"',
            "browser.parallel_pages",
            'from 1 to 32, or "auto"',
        ),
        ("attempts = 3", "attempts = 3\nattempt = 4", "retry.attempt", "unknown key"),
        ('robot = "refunds"', 'robot = "refundz"', "targets.0.robot", "not a registered robot"),
        (
            'scenario = "scenarios',
            'scenario = "scenarios/nope',
            "targets.0.scenario",
            "does not exist",
        ),
    ],
)
def test_bad_workspace_values(
    tmp_path: Path, replace: str, by: str, key: str, expected: str
) -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "robots.toml").read_text(encoding="utf-8")
    assert replace in text
    (tmp_path / "robots.toml").write_text(text.replace(replace, by, 1), encoding="utf-8")
    (tmp_path / "scenarios").symlink_to(root / "scenarios")
    result = run_cli("config", "check", "-w", str(tmp_path))
    assert result.returncode == 2
    assert "ConfigError" in result.stderr
    assert f"robots.toml: {key}" in result.stderr.replace("\n", "")
    assert expected in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("replace", "by", "key", "expected"),
    [
        (
            "max_auto_amount = 300",
            "max_auto_amount = -5",
            "policy.max_auto_amount",
            "greater than 0",
        ),
        (
            "max_auto_amount = 300",
            'max_auto_amount = "lots"',
            "policy.max_auto_amount",
            "valid decimal",
        ),
        (
            'base_url = "http://127.0.0.1:8765/"',
            'base_url = "not a url"',
            "shop.base_url",
            "valid URL",
        ),
        ('credential = "demo-shop"', 'credential = ""', "shop.credential", "at least 1"),
        (
            'refund_id = { selector = ":scope", attribute = "data-refund-id" }\n',
            "",
            "list",
            "fields.refund_id is required",
        ),
        (
            'next_page = "a[rel=next]"\n',
            'next_page = "a[rel=next]"\nload_more = "#more"\n',
            "list",
            "give one way to the next rows, not next_page and load_more",
        ),
        (
            'steps = [{ click = "#approve" }',
            'steps = [{ click = "#approve", wait = "#x" }',
            "detail.approve.steps.0",
            "a step does exactly one of",
        ),
        (
            'receipt_quantity = { label = "仓库入库", '
            'selector = "[data-field=receipt_quantity]" }\n',
            "",
            "detail.fields",
            "missing field selectors: receipt_quantity",
        ),
        (
            "buyer_max_refund_rate = 0.5",
            "buyer_max_refund_rate = 1.5",
            "policy.buyer_max_refund_rate",
            "less than or equal to 1",
        ),
        ("[policy]", "[policy]\nmax_refund = 1", "policy.max_refund", "unknown key"),
    ],
)
def test_bad_scenario_values(
    tmp_path: Path, replace: str, by: str, key: str, expected: str
) -> None:
    text = SCENARIO.read_text(encoding="utf-8")
    assert replace in text
    bad = text.replace(replace, by, 1)
    ws = write_workspace(tmp_path, None, scenario_text=bad)
    result = run_cli("run", "refunds", "-w", str(ws))
    flat = result.stderr.replace("\n", " ")
    assert result.returncode == 2, result.stderr
    assert "ConfigError" in flat and "refunds.toml: " + key in result.stderr.replace("\n", "")
    assert expected in flat
    assert "Traceback" not in result.stderr


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    scenario = tmp_path / "refunds.toml"
    scenario.write_text("[shop]\nname = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"refunds.toml: not valid TOML: .*line 2"):
        load_refund_scenario(scenario)


def test_missing_workspace_file(tmp_path: Path) -> None:
    result = run_cli("run", "refunds", "-w", str(tmp_path))
    assert result.returncode == 2
    assert "robots.toml: file not found" in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr


def test_missing_credential_says_how_to_provide_it(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, None)
    (ws / "secrets" / "credentials.toml").unlink()
    result = run_cli("run", "refunds", "-w", str(ws))
    flat = result.stderr.replace("\n", " ")
    assert result.returncode == 2
    assert "ROBOTS_CREDENTIAL_DEMO_SHOP_PASSWORD" in flat and "[demo-shop]" in flat


def test_cli_usage_error_exits_2() -> None:
    result = run_cli("run", "refunds", "--limit", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unreachable_shop_is_a_clear_error(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, f"http://127.0.0.1:{dead_port()}/", attempts=2)
    result = run_cli("run", "refunds", "-w", str(ws))
    flat = result.stderr.replace("\n", " ")
    assert result.returncode == 1
    assert "SystemException" in flat and "ERR_CONNECTION_REFUSED" in flat
    assert "Traceback" not in result.stderr


def test_the_short_forms_of_earlier_scenarios_still_load(tmp_path: Path) -> None:
    """Row attributes and approve/confirm buttons, as scenarios said them before steps."""
    from robots.refunds.scenario import load_refund_scenario

    text = SCENARIO.read_text(encoding="utf-8")
    fields = text[text.index("[list.fields]") : text.index("[detail]")]
    text = text.replace(
        fields,
        'refund_id_attribute = "data-refund-id"\nversion_attribute = "data-version"\n'
        'status_attribute = "data-status"\n\n',
    )
    approve = text[text.index("[detail.approve]") : text.index("[detail.fields]")]
    text = text.replace(
        approve,
        "",
    ).replace(
        'path = "/refunds/{refund_id}"\n',
        'path = "/refunds/{refund_id}"\napprove_button = "#approve"\n'
        'confirm_button = "#confirm-approve"\nerror_banner = "#action-error"\n'
        'success_banner = "#action-notice"\n',
    )
    old = tmp_path / "refunds.toml"
    old.write_text(text, encoding="utf-8")
    scenario = load_refund_scenario(old)
    row = scenario.list.row_fields
    assert (row["refund_id"].selector, row["refund_id"].attribute) == (":scope", "data-refund-id")
    assert row["status"].attribute == "data-status"
    action = scenario.detail.approve_action
    assert [s.click for s in action.steps] == ["#approve", "#confirm-approve"]
    assert (action.success, action.error) == ("#action-notice", "#action-error")


def test_config_check_reports_every_problem_with_files_and_credentials(tmp_path: Path) -> None:
    """A missing credential, a price list that is not there and a bad word file: all named
    at once, the first on the first line."""
    from conftest import write_pagescan_workspace

    ws = write_pagescan_workspace(tmp_path, "http://127.0.0.1:9/", tmp_path / "no-prices.xlsx")
    refunds = SCENARIO.read_text(encoding="utf-8").replace(
        'credential = "demo-shop"', 'credential = "nobody-stored-this"'
    )
    (tmp_path / "refunds.toml").write_text(refunds, encoding="utf-8")
    with (ws / "robots.toml").open("a", encoding="utf-8") as f:
        f.write(
            '\n[[targets]]\nname = "shop"\nrobot = "refunds"\n'
            f'scenario = "{tmp_path / "refunds.toml"}"\n'
        )
    result = run_cli("config", "check", "-w", str(ws))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("ConfigError: ") and "no-prices.xlsx" in lines[0], lines[0]
    assert any("shop.credential" in ln and "nobody-stored-this" in ln for ln in lines)
    assert "2 problem(s)" in lines[-1]
    assert "Traceback" not in result.stderr
