"""How make test hands the suite out (tests/conftest.py): what the scheduler reads."""

from __future__ import annotations

from pathlib import Path

from conftest import xdist_groups


def test_the_scheduler_reads_each_tests_xdist_group_from_its_source() -> None:
    """The four tests of one full page scan share its module fixture: one worker, one scan."""
    groups = xdist_groups(Path(__file__).parent / "test_pagescan_robot.py")
    assert groups == {
        "test_findings_match_the_ground_truth": "full_scan",
        "test_prices_rendered_by_javascript_are_read": "full_scan",
        "test_the_scan_changes_nothing_and_loads_no_images": "full_scan",
        "test_the_workbook_reads_back_as_promised": "full_scan",
    }
