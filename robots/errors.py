"""Every error robots raises on purpose, under one root.

    RobotsError                  root: the CLI prints "Kind: message" and exits non-zero
    ├── ConfigError              a bad robots.toml or scenario value (file, key, expected); exit 2
    ├── CredentialError          a credential is missing or was refused by the shop
    ├── VaultError               the vault key is missing, wrong or unsafe; the vault file is bad
    ├── RunLocked                another run of the same robot is in progress; exit 75
    ├── BrowserNotFound          no Chromium to drive; says which apt package to install
    ├── BusinessException        the data says no: never retried, handed to a person
    │   └── StaleRecord          the record changed between reading it and acting on it
    └── SystemException          something temporary broke: retried with a bound
        ├── PageError            the shop answered with an error page (5xx) or an unknown page
        └── SessionExpired       the shop sent us back to its login page

Playwright's own ``TimeoutError`` and ``Error`` also count as system exceptions
(see ``robots.runtime.retry.TEMPORARY``).
"""

from __future__ import annotations


class RobotsError(Exception):
    """Root of every deliberate error; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(RobotsError):
    """A configuration file is unreadable or holds a value that cannot work."""

    exit_code = 2

    def __init__(self, message: str, *, file: str, key: str = "", expected: str = "") -> None:
        self.file, self.key, self.expected = file, key, expected
        where = f"{file}: {key}" if key else file
        detail = f" (expected {expected})" if expected else ""
        super().__init__(f"{where}: {message}{detail}")


class CredentialError(RobotsError):
    """A credential cannot be found, or the shop refused it."""

    exit_code = 2

    def __init__(self, message: str, *, credential: str) -> None:
        self.credential = credential
        super().__init__(message)


class VaultError(RobotsError):
    """The credentials vault cannot be opened: no key, a wrong key, an unsafe key file."""

    exit_code = 2


class RunLocked(RobotsError):
    """Another run of the same robot holds its lock (from cron, the scheduler or a person)."""

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, message: str, *, robot: str) -> None:
        self.robot = robot
        super().__init__(message)


class BrowserNotFound(RobotsError):
    """No Chromium executable is available."""

    exit_code = 2


class BusinessException(RobotsError):
    """The data says no. Never retried; the item goes to a person with ``code``."""

    def __init__(self, code: str, message: str, *, item_id: str = "") -> None:
        self.code, self.item_id = code, item_id
        super().__init__(message)


class StaleRecord(BusinessException):
    """The live record is not the one the decision was made on."""

    def __init__(self, message: str, *, item_id: str = "") -> None:
        super().__init__("STALE_RECORD", message, item_id=item_id)


class SystemException(RobotsError):
    """A temporary failure (page error, timeout, lost session): retried with a bound."""

    code = "SYSTEM_ERROR"

    def __init__(self, message: str, *, url: str = "", item_id: str = "") -> None:
        self.url, self.item_id = url, item_id
        super().__init__(message)


class PageError(SystemException):
    """The shop answered with an error page or a page we do not recognise."""

    code = "PAGE_ERROR"


class SessionExpired(SystemException):
    """The shop sent us back to its login page."""

    code = "SESSION_EXPIRED"
