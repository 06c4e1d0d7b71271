"""Who may sign in to the console and what each role may do.

Passwords are hashed with argon2id (argon2-cffi), never kept; a role is one of ``ROLES``, each
allowed what the one before it is and more."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

VIEWER, REVIEWER, OPERATOR = "viewer", "reviewer", "operator"
ROLES = (VIEWER, REVIEWER, OPERATOR)  # each may do what the ones before it may
ROLE_TEXT = {VIEWER: "查看", REVIEWER: "复核", OPERATOR: "运维"}
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs what a wrong password does
_NOBODY = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _NOBODY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def may(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def signing_key(state: Path) -> str:
    """The key the console signs its session cookies with: made once, kept in the
    workspace's state folder, readable by its owner only."""
    path = state / "console-secret"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
