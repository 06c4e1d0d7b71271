"""Credentials by name: from environment variables, else from a file kept outside git.

``ROBOTS_CREDENTIAL_<NAME>_USERNAME`` / ``..._PASSWORD`` (name upper-cased, ``-`` and ``.``
as ``_``) win; otherwise the TOML credentials file has a ``[name]`` table with ``username``
and ``password``. The vault arrives later behind the same ``Credential`` shape.
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


@dataclass(frozen=True)
class Credential:
    name: str
    username: str
    password: str = field(repr=False)


def _env_prefix(name: str) -> str:
    return "ROBOTS_CREDENTIAL_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def load_credential(name: str, credentials_file: Path) -> Credential:
    prefix = _env_prefix(name)
    user, password = os.environ.get(prefix + "_USERNAME"), os.environ.get(prefix + "_PASSWORD")
    if user and password:
        return Credential(name, user, password)
    file = credentials_file.expanduser()
    if file.is_file():
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("credentials file {} is readable by others; chmod 600 it", file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CredentialError(f"{file}: not valid TOML: {exc}", credential=name) from None
        entry = data.get(name)
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            return Credential(name, str(entry["username"]), str(entry["password"]))
    raise CredentialError(
        f"no credential named {name!r}: set {prefix}_USERNAME and {prefix}_PASSWORD, or add a "
        f"[{name}] table with username and password to {file}",
        credential=name,
    )
