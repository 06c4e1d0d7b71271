"""The field reference covers every field of the three robots: each described (what it is
exactly, its type, the rules that read it), docs/fields.md equal to what `robots scenario
fields --markdown` writes, and a field a scenario model gains fails here until described."""

from __future__ import annotations

import subprocess
from dataclasses import fields as dataclass_fields
from pathlib import Path

import pytest
from conftest import ROOT, robots_cmd

from robots.engine.fields import FieldKind
from robots.pagescan.scenario import ProductFields
from robots.refunds.model import RefundRequest
from robots.refunds.scenario import ListPage
from robots.registry import ROBOTS, spec
from robots.returns.matching import Candidate
from robots.returns.scenario import CANDIDATE_ATTRIBUTES, ParcelPage

DOCS = ROOT / "docs" / "fields.md"


def described(robot: str) -> dict[str, dict[str, FieldKind]]:
    return {path: dict(kinds) for path, kinds in spec(robot).field_tables.items()}


def test_every_field_of_every_robot_says_what_it_is() -> None:
    for robot in ROBOTS:
        tables = described(robot)
        if robot == "flow":  # a flow's fields are declared in its file, typed there
            assert tables == {}, tables
            continue
        assert tables, robot
        for path, kinds in tables.items():
            for name, kind in kinds.items():
                assert len(kind.means) >= 20, (robot, path, name)
                assert kind.type in ("text", "int", "money", "bool", "datetime"), name


def test_the_reference_covers_every_scenario_model() -> None:
    """What each robot's scenario can name is what the reference describes, both ways."""
    refunds = described("refunds")
    record = {f.name for f in dataclass_fields(RefundRequest)} - {"receipt"}
    receipt = {"receipt", "receipt_waybill", "receipt_sku", "receipt_quantity"}
    assert set(refunds["detail.fields"]) == record | receipt
    list_attributes = {n.removesuffix("_attribute") for n in ListPage.model_fields if "_attr" in n}
    assert set(refunds["list.fields"]) == list_attributes

    product = set(ProductFields.model_fields) - {"ready", "sku_row"}
    assert set(described("pagescan")["product"]) == product

    returns = described("returns")
    assert set(returns["search.fields"]) == CANDIDATE_ATTRIBUTES
    from_rows = {f.name for f in dataclass_fields(Candidate)}
    assert set(returns["search.fields"]) - {"linked", "lines", "refunded"} <= from_rows
    parcel = set(ParcelPage.model_fields) - {"path"}
    assert set(returns["parcel_page"]) == parcel


def test_docs_fields_md_is_what_the_command_writes(tmp_path: Path) -> None:
    written = subprocess.run(
        robots_cmd("scenario", "fields", "--markdown", "-w", str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert DOCS.read_text(encoding="utf-8") == written, (
        "docs/fields.md is stale: robots scenario fields --markdown > docs/fields.md"
    )
    for robot in ROBOTS:
        for path, kinds in described(robot).items():
            assert f"### `[{path}]`" in written
            for name in kinds:
                assert f"#### `{name}` —" in written, (robot, name)
    # each demo scenario's spec is shown beside the field it fills, both skins
    assert 'intervention = { label = "平台介入"' in written
    assert 'intervention = { label = "平台客服"' in written


@pytest.mark.parametrize("robot", [*ROBOTS, "nosuch"])
def test_the_command_prints_one_robot(robot: str) -> None:
    result = subprocess.run(
        robots_cmd("scenario", "fields", robot, "-w", str(ROOT)),
        capture_output=True,
        text=True,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )
    if robot == "nosuch":
        assert result.returncode == 2 and "no robot named 'nosuch'" in result.stderr
        assert "Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert spec(robot).title in result.stdout
