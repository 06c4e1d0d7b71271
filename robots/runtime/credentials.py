"""Credentials by name: from environment variables, the vault, or a file kept outside git.

``ROBOTS_CREDENTIAL_<NAME>_USERNAME`` / ``..._PASSWORD`` (and ``..._TOTP``; name upper-cased,
``-`` and ``.`` as ``_``) win; then the encrypted vault (``robots vault set NAME``); then the
plain TOML credentials file with a ``[name]`` table of ``username``, ``password`` and
optionally ``totp``.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from robots.errors import CredentialError
from robots.vault import Vault, find_key


@dataclass(frozen=True)
class Credential:
    name: str
    username: str
    password: str = field(repr=False)
    totp: str = field(default="", repr=False)  # base32 secret for one-time codes, if any

    @property
    def secrets(self) -> list[str]:
        """Values that must never be written anywhere."""
        return [v for v in (self.password, self.totp) if v]


@dataclass(frozen=True)
class CredentialStore:
    """Where a workspace keeps credentials; ``get`` looks in each place in turn."""

    credentials_file: Path
    vault_file: Path
    key_file: Path
    workspace: Path
    use_keyring: bool = True

    def get(self, name: str) -> Credential:
        prefix = _env_prefix(name)
        user, password = os.environ.get(prefix + "_USERNAME"), os.environ.get(prefix + "_PASSWORD")
        if user and password:
            return Credential(name, user, password, os.environ.get(prefix + "_TOTP", ""))
        vault = Vault(self.vault_file)
        if name in vault:
            key = find_key(self.key_file, workspace=self.workspace, use_keyring=self.use_keyring)
            s = vault.get(name, key)
            return Credential(name, s.username, s.password, s.totp)
        found = _from_file(name, self.credentials_file.expanduser())
        if found is not None:
            return found
        raise CredentialError(
            f"no credential named {name!r}: store it with `robots vault set {name}`, or set "
            f"{prefix}_USERNAME and {prefix}_PASSWORD, or add a [{name}] table with username "
            f"and password to {self.credentials_file}",
            credential=name,
        )


def _env_prefix(name: str) -> str:
    return "ROBOTS_CREDENTIAL_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _from_file(name: str, file: Path) -> Credential | None:
    if not file.is_file():
        return None
    if file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("credentials file {} is readable by others; chmod 600 it", file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CredentialError(f"{file}: not valid TOML: {exc}", credential=name) from None
    entry = data.get(name)
    if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
        return Credential(
            name, str(entry["username"]), str(entry["password"]), str(entry.get("totp", ""))
        )
    return None
