"""The credentials vault: usernames, passwords and TOTP secrets encrypted at rest.

The vault file (``credentials/vault.json`` by default) keeps each credential as its own
Fernet token (AES-128-CBC + HMAC-SHA256, from ``cryptography``); only names and change
times are in clear, so ``robots vault list`` works without the key. The key comes from, in
order: the ``ROBOTS_VAULT_KEY`` environment variable, the OS keyring (service ``robots``,
entry ``vault-key``), or a key file kept outside the workspace with 0600 permissions.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from robots.errors import VaultError

KEY_ENV = "ROBOTS_VAULT_KEY"
KEYRING_SERVICE, KEYRING_ENTRY = "robots", "vault-key"
_CHECK = b"robots-vault-v1"  # encrypted once per vault: a wrong key is caught before any write


@dataclass(frozen=True)
class Secret:
    """What one vault entry holds."""

    username: str
    password: str = field(repr=False)
    totp: str = field(default="", repr=False)  # base32 TOTP secret, empty when none


@dataclass(frozen=True)
class VaultKey:
    key: bytes = field(repr=False)
    source: str  # where it came from, for messages: never the key itself


def new_key() -> bytes:
    return Fernet.generate_key()


def _fernet(key: VaultKey) -> Fernet:
    try:
        return Fernet(key.key)
    except (ValueError, TypeError):
        raise VaultError(
            f"the vault key from {key.source} is not a vault key (expected 44 characters of "
            "url-safe base64); make one with `robots vault init`"
        ) from None


def _from_keyring() -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, KEYRING_ENTRY)
    except KeyringError:
        return None  # no usable keyring on this machine (a headless server): try the key file


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_key_file(path: Path, *, workspace: Path) -> None:
    """A key file must be outside the workspace (so never committed) and private (0600)."""
    if _inside(path, workspace):
        raise VaultError(
            f"the vault key file {path} is inside the workspace {workspace}, where it could be "
            "committed with the vault; keep it elsewhere (default ~/.config/robots/vault.key)"
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VaultError(
            f"the vault key file {path} can be read by other users "
            f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )


def find_key(key_file: Path, *, workspace: Path, use_keyring: bool = True) -> VaultKey:
    """The vault key from the environment, the OS keyring, or the key file, in that order."""
    env = os.environ.get(KEY_ENV)
    if env:
        return VaultKey(env.strip().encode(), f"${KEY_ENV}")
    if use_keyring:
        stored = _from_keyring()
        if stored:
            return VaultKey(stored.strip().encode(), "the OS keyring (robots/vault-key)")
    path = key_file.expanduser()
    if path.is_file():
        check_key_file(path, workspace=workspace)
        return VaultKey(path.read_bytes().strip(), str(path))
    raise VaultError(
        f"no vault key: set {KEY_ENV}, store one in the OS keyring, or create the key file "
        f"{path} with `robots vault init`"
    )


def write_key_file(path: Path, key: bytes, *, workspace: Path) -> None:
    """Create a new key file readable by its owner only; never overwrites one."""
    path = path.expanduser()
    if _inside(path, workspace):
        raise VaultError(f"{path} is inside the workspace; keep the vault key elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise VaultError(
            f"{path} already exists; a new key would lock out every credential in the vault"
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")


class Vault:
    """One vault file. Reading entries needs the key; listing names does not."""

    def __init__(self, file: Path) -> None:
        self.file = file

    # -- the file ----------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        """The whole file, every entry's shape checked: a bad vault fails here, naming the
        entry, never later as a KeyError or an AttributeError."""
        if not self.file.exists():
            return {"version": 1, "check": "", "credentials": {}}
        if not self.file.is_file():
            raise VaultError(f"{self.file}: not a file (expected the vault's JSON file)")
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VaultError(f"{self.file} is not a vault file (not JSON: {exc})") from None
        except OSError as exc:
            raise VaultError(f"{self.file}: cannot be read ({exc.strerror})") from None
        if not isinstance(data, dict) or not isinstance(data.get("credentials"), dict):
            raise VaultError(f"{self.file} is not a vault file (no 'credentials' table)")
        if not isinstance(data.get("check", ""), str):
            raise VaultError(
                f"{self.file}: check: expected the vault's check token (text), got "
                f"{type(data['check']).__name__}"
            )
        for name, entry in data["credentials"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                raise VaultError(
                    f"{self.file}: credentials.{name}: expected a table with a 'token' "
                    "(re-store it with `robots vault set " + name + "`)"
                )
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(self.file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.file)

    def _checked(self, data: dict[str, Any], key: VaultKey) -> Fernet:
        fernet = _fernet(key)
        if data.get("check"):
            try:
                fernet.decrypt(data["check"].encode())
            except (InvalidToken, ValueError):
                raise VaultError(
                    f"the vault key from {key.source} does not open {self.file}: wrong key? "
                    "(use the key the vault was made with)"
                ) from None
        return fernet

    # -- operations ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._load()["credentials"])

    def updated(self) -> dict[str, str]:
        return {n: e.get("updated_at", "") for n, e in self._load()["credentials"].items()}

    def __contains__(self, name: str) -> bool:
        return name in self._load()["credentials"]

    def check(self, key: VaultKey) -> None:
        """Fail now, before asking anyone for a password, if ``key`` cannot open this vault."""
        self._checked(self._load(), key)

    def get(self, name: str, key: VaultKey) -> Secret:
        data = self._load()
        fernet = self._checked(data, key)
        entry = data["credentials"].get(name)
        if entry is None:
            raise VaultError(f"no credential named {name!r} in {self.file}")
        try:
            plain = json.loads(fernet.decrypt(entry["token"].encode()))
        except InvalidToken:
            raise VaultError(
                f"the vault key from {key.source} does not open credential {name!r} in "
                f"{self.file}: wrong key?"
            ) from None
        if not isinstance(plain, dict) or not all(
            isinstance(plain.get(k), str) for k in ("username", "password")
        ):
            raise VaultError(
                f"{self.file}: credentials.{name}: holds no username and password "
                f"(re-store it with `robots vault set {name}`)"
            )
        return Secret(plain["username"], plain["password"], str(plain.get("totp", "")))

    def set(self, name: str, secret: Secret, key: VaultKey) -> None:
        data = self._load()
        fernet = self._checked(data, key)
        if not data.get("check"):
            data["check"] = fernet.encrypt(_CHECK).decode()
        plain = {"username": secret.username, "password": secret.password, "totp": secret.totp}
        data["credentials"][name] = {
            "token": fernet.encrypt(json.dumps(plain).encode()).decode(),
            "updated_at": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        }
        self._save(data)

    def delete(self, name: str) -> None:
        data = self._load()
        if data["credentials"].pop(name, None) is None:
            raise VaultError(f"no credential named {name!r} in {self.file}")
        self._save(data)
