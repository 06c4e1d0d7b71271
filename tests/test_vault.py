"""The credentials vault (encryption at rest, key handling) and two-factor login through it."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
from pathlib import Path

import pyotp
import pytest
from conftest import (
    PASSWORD,
    SCENARIO,
    USERNAME,
    assert_secrets_absent,
    robot_env,
    robots_cmd,
    start_sandbox,
    stop_sandbox,
)

from robots.errors import VaultError
from robots.vault import Secret, Vault, VaultKey, find_key, new_key, write_key_file


def key() -> VaultKey:
    return VaultKey(new_key(), "test")


def test_round_trip_keeps_values_encrypted_at_rest(tmp_path: Path) -> None:
    vault, k = Vault(tmp_path / "credentials" / "vault.json"), key()
    vault.set("shop-a", Secret("alice", "pw-" + "9" * 12, "GSJDR3VW6JTDGTO65LAY7MFM74BXYUSO"), k)
    vault.set("shop-b", Secret("bob", "another-pw-123"), k)
    assert vault.names() == ["shop-a", "shop-b"]
    got = vault.get("shop-a", k)
    assert (got.username, got.password, got.totp) == (
        "alice",
        "pw-999999999999",
        "GSJDR3VW6JTDGTO65LAY7MFM74BXYUSO",
    )
    raw = vault.file.read_text(encoding="utf-8")
    for plain in ("alice", "pw-999999999999", "GSJDR3VW6JTDGTO65LAY7MFM74BXYUSO", "another-pw"):
        assert plain not in raw
    assert stat.S_IMODE(vault.file.stat().st_mode) == 0o600
    assert "pw-999" not in repr(got)
    vault.delete("shop-b")
    assert vault.names() == ["shop-a"]


def test_wrong_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.json")
    vault.set("shop", Secret("alice", "secret-pw-1"), key())
    before = vault.file.read_bytes()
    with pytest.raises(VaultError, match=r"does not open .*wrong key"):
        vault.get("shop", key())
    with pytest.raises(VaultError, match="wrong key"):
        vault.set("other", Secret("bob", "secret-pw-2"), key())
    assert vault.file.read_bytes() == before
    with pytest.raises(VaultError, match="not a vault key"):
        vault.get("shop", VaultKey(b"not-a-key", "$ROBOTS_VAULT_KEY"))


def test_key_file_must_be_private_and_outside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROBOTS_VAULT_KEY", raising=False)
    ws, home = tmp_path / "ws", tmp_path / "home"
    ws.mkdir()
    key_file = home / "vault.key"
    with pytest.raises(VaultError, match="no vault key: set ROBOTS_VAULT_KEY"):
        find_key(key_file, workspace=ws, use_keyring=False)
    write_key_file(key_file, new_key(), workspace=ws)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert find_key(key_file, workspace=ws, use_keyring=False).source == str(key_file)
    with pytest.raises(VaultError, match="already exists"):
        write_key_file(key_file, new_key(), workspace=ws)
    key_file.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        find_key(key_file, workspace=ws, use_keyring=False)
    with pytest.raises(VaultError, match="inside the workspace"):
        write_key_file(ws / "vault.key", new_key(), workspace=ws)
    monkeypatch.setenv("ROBOTS_VAULT_KEY", new_key().decode())
    assert find_key(key_file, workspace=ws, use_keyring=False).source == "$ROBOTS_VAULT_KEY"


def write_vault_workspace(root: Path, sandbox_url: str, key_file: Path) -> Path:
    """A workspace with no plain credentials file: the robot must use the vault."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "robots.toml").write_text(
        f"""
[paths]
credentials_file = "{root / "no-such-credentials.toml"}"

[vault]
key_file = "{key_file}"
keyring = false

[browser]
parallel_pages = 2
timeout_ms = 10000

[retry]
attempts = 2
wait_initial_s = 0.1
wait_max_s = 0.2

[[targets]]
name = "sandbox"
robot = "refunds"
scenario = "{SCENARIO}"
base_url = "{sandbox_url}"
""",
        encoding="utf-8",
    )
    return root


def robots(
    ws: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd(*args, "-w", str(ws)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env or robot_env(),
    )


def test_vault_commands_give_clear_errors(tmp_path: Path) -> None:
    ws = write_vault_workspace(tmp_path / "ws", "http://127.0.0.1:9/", tmp_path / "k" / "vault.key")
    missing = robots(ws, "vault", "set", "demo-shop", "--username", "u", "--from-stdin", stdin="x")
    assert missing.returncode == 2 and "VaultError: no vault key" in missing.stderr
    assert robots(ws, "vault", "init").returncode == 0
    stored = robots(
        ws, "vault", "set", "demo-shop", "--username", "u", "--from-stdin", stdin="pw-abcdef\n"
    )
    assert stored.returncode == 0, stored.stderr
    wrong = robot_env(ROBOTS_VAULT_KEY=new_key().decode())
    for args in (
        ("vault", "set", "x", "--username", "u", "--from-stdin"),
        ("run", "refunds"),
    ):
        result = robots(ws, *args, stdin="pw-abcdef\n", env=wrong)
        assert result.returncode == 2, result.stderr
        assert "VaultError" in result.stderr and "wrong key" in result.stderr
        assert "Traceback" not in result.stderr
    listed = robots(ws, "vault", "list")
    assert listed.returncode == 0 and "demo-shop" in listed.stdout
    assert "pw-abcdef" not in listed.stdout + listed.stderr
    bad_totp = robots(
        ws,
        *("vault", "set", "t", "--username", "u", "--totp", "--from-stdin"),
        stdin="pw-abcdef\nnot base32!\n",
    )
    assert bad_totp.returncode == 2 and "TOTP secret is not usable" in bad_totp.stderr
    assert "t" not in json.loads((ws / "credentials" / "vault.json").read_text())["credentials"]
    assert robots(ws, "vault", "delete", "demo-shop", "--yes").returncode == 0
    gone = robots(ws, "vault", "delete", "demo-shop", "--yes")
    assert gone.returncode == 2 and "no credential named 'demo-shop'" in gone.stderr


@pytest.mark.browser
def test_two_factor_login_through_the_vault_leaks_no_secret(tmp_path: Path) -> None:
    totp_secret = pyotp.random_base32()
    sandbox = start_sandbox(tmp_path / "shop", refunds=40, totp_secret=totp_secret)
    try:
        ws = write_vault_workspace(tmp_path / "ws", sandbox.url, tmp_path / "keys" / "vault.key")
        assert robots(ws, "vault", "init").returncode == 0

        # without the TOTP secret the shop's second step cannot be passed: a clear error
        no_totp = robots(
            ws,
            *("vault", "set", "demo-shop", "--username", USERNAME, "--from-stdin"),
            stdin=PASSWORD + "\n",
        )
        assert no_totp.returncode == 0, no_totp.stderr
        refused = robots(ws, "run", "refunds")
        assert refused.returncode == 2
        assert "asks for a one-time code" in refused.stderr and "Traceback" not in refused.stderr

        stored = robots(
            ws,
            *("vault", "set", "demo-shop", "--username", USERNAME, "--totp", "--from-stdin"),
            stdin=f"{PASSWORD}\n{totp_secret}\n",
        )
        assert stored.returncode == 0, stored.stderr
        # one refund fails every time, so the run keeps screenshots and a trace as evidence
        with sandbox.db() as conn:
            target = conn.execute(
                "SELECT refund_id FROM refunds WHERE status = 'WAIT_SELLER_AGREE' LIMIT 1"
            ).fetchone()[0]
        sandbox.control("faults", path_prefix=f"/refunds/{target}", count=50, status=500)
        result = robots(ws, "run", "refunds", "-v")
        assert result.returncode == 1, result.stderr  # the failing refund needs an operator
        posts = [p for _, m, p in sandbox.requests() if m == "POST"]
        assert "/login/otp" in posts  # the second factor was asked for and passed
        assert any(p.endswith("/approve") for p in posts)
        with sandbox.db() as conn:
            assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] > 0

        # the run that got in (the refused one left a log folder without evidence)
        [run_dir] = [d for d in (ws / "logs").iterdir() if (d / "evidence").is_dir()]
        assert list(run_dir.glob("evidence/*.png")) and list(run_dir.glob("evidence/*.trace.zip"))
        assert (run_dir / "run.jsonl").stat().st_size > 0
        files = [
            *(ws / "logs").rglob("*"),
            *(ws / "reports").rglob("*"),
            *(ws / "state").rglob("*"),
        ]
        searched = assert_secrets_absent(files, [PASSWORD, totp_secret])
        assert searched >= 8
        assert PASSWORD not in result.stdout + result.stderr
        assert totp_secret not in result.stdout + result.stderr
        # a second run straight after: the shop refuses a code used twice, so the robot
        # waits for the next one when it has to; either way it gets in
        sandbox.control("reset")
        again = robots(ws, "run", "refunds")
        assert again.returncode == 0, again.stderr
        ledger = sqlite3.connect(ws / "state" / "ledger.sqlite3")
        with ledger:
            assert ledger.execute("SELECT count(*) FROM work_items").fetchone()[0] > 0
        ledger.close()
    finally:
        stop_sandbox(sandbox)
