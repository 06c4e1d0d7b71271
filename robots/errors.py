"""Every error robots raises on purpose, under one root, and the one boundary that maps others.

    RobotsError                  root: the CLI prints "Kind: message" and exits ``exit_code``
    ├── ConfigError              a bad robots.toml, scenario or input file (file, key, expected); 2
    ├── CredentialError          a credential is missing or was refused by the shop; 2
    ├── VaultError               the vault key is missing, wrong or unsafe; the vault file is bad; 2
    ├── InvalidReview            a reviewed workbook that cannot be applied (every problem); 2
    ├── MalformedExport          the warehouse terminal's export is not a parcel list; 2
    ├── UnknownRun               no run with that id in the ledger; 2
    ├── LedgerUnavailable        the cluster's ledger (PostgreSQL) does not answer; 69
    ├── RunLocked                another run of the same robot is in progress; 75
    ├── SchedulerAlreadyRunning  another scheduler serves the same job store; 75
    ├── BrowserNotFound          no Chromium to drive; says which apt package to install; 2
    ├── ScenarioUnreadable       the scenario does not fit the shop's pages (a list selector
    │                            matched nothing, most items unreadable): stopped, never retried; 1
    ├── BusinessException        the data says no: never retried, handed to a person (``code``)
    │   └── StaleRecord          the record changed between reading it and acting on it
    └── SystemException          something temporary broke: retried with a bound; 1
        ├── PageError            the shop answered with an error page (5xx) or an unknown page
        │   └── FieldError       a value on the page cannot be read as the scenario says
        ├── SessionExpired       the shop sent us back to its login page
        └── DesktopError         the display, the desktop program or one of its windows is gone

Foreign errors (Playwright's ``Error``/``TimeoutError``, pyautogui's fail-safe, X errors, a
dropped connection) are system exceptions too: ``robots.runtime.retry.TEMPORARY`` lists them
for retrying, and ``map_foreign`` turns any that escape a robot run into ``SystemException``
at one boundary (``robots.engine.run.RobotRun.run``), so the CLI never prints a traceback for
a shop that is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
        super().__init__(f"{where}: {message}{detail}" if where else f"{message}{detail}")


class CredentialError(RobotsError):
    """A credential cannot be found, or the shop refused it."""

    exit_code = 2

    def __init__(self, message: str, *, credential: str) -> None:
        self.credential = credential
        super().__init__(message)


class VaultError(RobotsError):
    """The credentials vault cannot be opened: no key, a wrong key, an unsafe key file."""

    exit_code = 2


class InvalidReview(RobotsError):
    """The reviewed workbook cannot be applied as it is; nothing was applied."""

    exit_code = 2
    SHOWN = 25

    def __init__(self, file: object, problems: list[str]) -> None:
        self.file, self.problems = file, problems
        shown = "\n  ".join(problems[: self.SHOWN])
        more = len(problems) - self.SHOWN
        tail = f"\n  … and {more} more" if more > 0 else ""
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"{file}: {len(problems)} {noun}; nothing was applied. Fix the workbook and run "
            f"`robots apply` again:\n  {shown}{tail}"
        )


class MalformedExport(RobotsError):
    """The terminal's export cannot be read as a parcel list."""

    exit_code = 2


class UnknownRun(RobotsError):
    """No run with the given id (or prefix) is in the ledger."""

    exit_code = 2


class LedgerUnavailable(RobotsError):
    """The shared ledger cannot be reached: nothing is done without it (EX_UNAVAILABLE)."""

    exit_code = 69

    @classmethod
    def of(cls, url: object, exc: BaseException) -> LedgerUnavailable:
        """The one line for a ledger that does not answer (``url``: SQLAlchemy's, whose repr
        masks the password)."""
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        return cls(
            f"the ledger at {url!r} does not answer ({cause}); check robots.toml "
            "[cluster] ledger or ROBOTS_LEDGER, and that PostgreSQL runs"
        )


class BrokerUnavailable(RobotsError):
    """The cluster's broker (Redis) cannot be reached: no item is sent or taken (EX_UNAVAILABLE)."""

    exit_code = 69


class RunLocked(RobotsError):
    """Another run of the same robot holds its lock (from cron, the scheduler or a person)."""

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, robot: str, since: str = "", *, anywhere: bool = False) -> None:
        """``since``: who holds the lock and since when, ``" (…)"``; ``anywhere``: the lock
        is the cluster's, held for every machine."""
        self.robot = robot
        machines = ", on any machine" if anywhere else ""
        super().__init__(
            f"another {robot} run is in progress{since}; this one did not start. "
            f"Runs of one robot never overlap{machines}; try again when it ends."
        )


class SchedulerAlreadyRunning(RobotsError):
    """A scheduler already serves this workspace's job store."""

    exit_code = 75


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


class FieldError(PageError):
    """A value on the page could not be read as what the scenario says it is."""

    code = "UNREADABLE_FIELD"


class SessionExpired(SystemException):
    """The shop sent us back to its login page."""

    code = "SESSION_EXPIRED"


class ScenarioUnreadable(RobotsError):
    """The scenario does not fit the shop's pages: a list selector matched nothing (and the
    list's empty marker is not there either), a ``ready`` marker never showed, or a field
    could not be read on most items. Not retried: the pages will not change by themselves."""

    code = "SCENARIO_UNREADABLE"


class DesktopError(SystemException):
    """The display, the program or one of its windows is not there (retried, then reported)."""

    code = "DESKTOP_ERROR"


def first_line(exc: BaseException) -> str:
    """``Kind: first line of the message``: what a ledger row, an alert or a summary shows."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def foreign_errors() -> tuple[type[BaseException], ...]:
    """Errors of the libraries we drive that mean "something temporary broke" (lazy imports:
    a command that never opens a browser must not pay for importing Playwright)."""
    found: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        from playwright.async_api import Error as PlaywrightError

        found.append(PlaywrightError)
    except ImportError:  # pragma: no cover - a dependency
        pass
    return tuple(found)


@contextmanager
def map_foreign(where: str) -> Iterator[None]:
    """The one boundary: a foreign error escaping a robot run becomes a ``SystemException``
    whose message says where it happened (``where``: e.g. the shop's address)."""
    try:
        yield
    except RobotsError:
        raise
    except foreign_errors() as exc:
        raise SystemException(f"could not work with {where}: {first_line(exc)}") from exc
    except Exception as exc:
        # pyautogui's fail-safe and python-xlib's errors: the desktop went away under us
        module = type(exc).__module__ or ""
        if module.startswith(("pyautogui", "Xlib", "pyscreeze")):
            raise DesktopError(f"the desktop failed at {where}: {first_line(exc)}") from exc
        raise
