"""`robots vault init|set|list|delete`: credentials encrypted at rest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from robots.commands import WorkspaceOpt, console, out
from robots.errors import VaultError

app = typer.Typer(help="Credentials encrypted at rest (passwords, TOTP secrets).")


@app.command("init")
def init(
    keyring_: Annotated[
        bool, typer.Option("--keyring", help="Keep the new key in the OS keyring, not a file.")
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Make a new vault key: a 0600 key file outside the workspace, or a keyring entry."""
    from robots.registry import load_workspace
    from robots.vault import KEYRING_ENTRY, KEYRING_SERVICE, new_key, write_key_file

    ws = load_workspace(workspace)
    key = new_key()
    if keyring_:
        import keyring
        from keyring.errors import KeyringError

        try:
            keyring.set_password(KEYRING_SERVICE, KEYRING_ENTRY, key.decode())
        except KeyringError as exc:
            raise VaultError(f"the OS keyring refused the key: {exc}") from None
        console.print(f"vault key stored in the OS keyring ({KEYRING_SERVICE}/{KEYRING_ENTRY})")
        return
    path = ws.config.vault.key_file.expanduser()
    write_key_file(path, key, workspace=ws.root)
    console.print(f"vault key written to {path} (mode 600); back it up somewhere safe")


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="Credential name, as scenarios refer to it.")],
    username: Annotated[str | None, typer.Option(help="Login name; else asked.")] = None,
    totp: Annotated[
        bool, typer.Option("--totp/--no-totp", help="Also ask for a TOTP secret (2FA).")
    ] = False,
    from_stdin: Annotated[
        bool,
        typer.Option(
            "--from-stdin",
            help="Read the password (then the TOTP secret) as lines from standard input, "
            "for provisioning scripts; needs --username.",
        ),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Store a credential; the password (and TOTP secret) are asked for and never echoed."""
    from robots.registry import load_workspace
    from robots.vault import Secret, Vault, find_key

    ws = load_workspace(workspace)
    store = ws.credentials()
    key = find_key(store.key_file, workspace=ws.root, use_keyring=store.use_keyring)
    vault = Vault(store.vault_file)
    vault.check(key)
    if from_stdin:
        if username is None:
            raise typer.BadParameter("--from-stdin needs --username", param_hint="--username")
        lines = [line.rstrip("\r\n") for line in sys.stdin]
        if len(lines) < (2 if totp else 1) or not lines[0]:
            raise VaultError(
                "--from-stdin expects the password on the first line"
                + (" and the TOTP secret on the second" if totp else "")
            )
        password, raw_totp = lines[0], (lines[1] if totp else "")
    else:
        if username is None:
            username = typer.prompt("username")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        raw_totp = typer.prompt("TOTP secret (base32)", hide_input=True) if totp else ""
    secret = raw_totp.replace(" ", "").upper()
    if totp:
        import pyotp

        try:
            pyotp.TOTP(secret).now()
        except ValueError as exc:  # binascii.Error included
            raise VaultError(
                f"the TOTP secret is not usable ({exc}): expected the base32 text (letters A-Z "
                "and digits 2-7) the shop's two-factor setup page shows; nothing was stored"
            ) from None
    vault.set(name, Secret(username, password, secret), key)
    console.print(f"stored {name!r} in {store.vault_file}{' with a TOTP secret' if secret else ''}")


@app.command("list")
def list_(workspace: WorkspaceOpt = Path(".")) -> None:
    """Names of the stored credentials (never their values)."""
    from robots.registry import load_workspace
    from robots.vault import Vault

    ws = load_workspace(workspace)
    vault = Vault(ws.credentials().vault_file)
    table = Table("credential", "changed", title=str(vault.file))
    for name, changed in sorted(vault.updated().items()):
        table.add_row(name, changed)
    out.print(table)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Credential name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Remove a credential from the vault."""
    from robots.registry import load_workspace
    from robots.vault import Vault

    ws = load_workspace(workspace)
    vault = Vault(ws.credentials().vault_file)
    if name not in vault:
        raise VaultError(f"no credential named {name!r} in {vault.file}")
    if not yes:
        typer.confirm(f"delete {name!r} from {vault.file}?", abort=True)
    vault.delete(name)
    console.print(f"deleted {name!r}")
