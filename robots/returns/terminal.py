"""The warehouse terminal's flows: log in, export the unlabelled parcels, link one parcel.

Window titles, where to click and which keys open what come from the scenario's
``[terminal]`` table: another warehouse client needs a new scenario, not new code.
"""

from __future__ import annotations

import time
from pathlib import Path

from loguru import logger
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from robots.errors import CredentialError
from robots.returns.desktop import Desktop, DesktopError, Window
from robots.returns.scenario import TerminalSpec
from robots.runtime.credentials import Credential


class WarehouseTerminal:
    def __init__(self, desktop: Desktop, spec: TerminalSpec) -> None:
        self.desktop, self.spec = desktop, spec

    def _window(self, part: str) -> Window | None:
        return self.desktop.find(self.spec.window, part)

    def require_running(self) -> Window:
        """The main or the login window; a clear error when the program is not there."""
        window = self._window(self.spec.main_window) or self._window(self.spec.login_window)
        if window is None:
            raise DesktopError(
                f"the warehouse terminal is not running on DISPLAY={self.desktop.name}: no "
                f"window titled {self.spec.window!r} (start it, e.g. `robots sandbox terminal`)"
            )
        return window

    def close_dialogs(self) -> None:
        """Dialogs left open (by a person, or a killed run) would swallow the keys: close them."""
        for title in (self.spec.link_dialog, self.spec.export_dialog):
            dialog = self.desktop.find(title)
            if dialog is not None:
                self.desktop.point_into(dialog)
                self.desktop.keys("escape")
                self.desktop.wait_for(title, timeout_s=self.spec.timeout_s, gone=True)

    def ensure_logged_in(self, credential: Credential) -> Window:
        window = self.require_running()
        if self.spec.main_window in window.title:
            return window
        d, spec = self.desktop, self.spec
        d.click(window, spec.username_at)
        d.type(credential.username)
        d.keys("tab")
        d.type(credential.password)
        d.keys("enter")
        try:
            main = d.wait_for(spec.window, spec.main_window, timeout_s=spec.timeout_s)
        except DesktopError:
            raise CredentialError(
                f"the warehouse terminal refused credential {credential.name!r}",
                credential=credential.name,
            ) from None
        logger.info("logged in to the warehouse terminal as {}", credential.username)
        assert main is not None
        return main

    def export(self, path: Path) -> Path:
        """Menu → export dialog → file name → Enter; returns the written file.

        The file is the proof: a program that is still moving keyboard focus into its new
        dialog can lose the first keys typed (the sandbox's Tk terminal does, on a busy
        machine), so an export that wrote nothing where it was told is tried again, its
        dialog closed first, up to ``[terminal] export_tries`` times. Exporting changes
        nothing in the warehouse, so trying again is safe."""
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        tries = self.spec.export_tries

        def again(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "export try {} of {}: {}; trying again", state.attempt_number, tries, exc
            )
            self.close_dialogs()

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(tries),
                retry=retry_if_exception_type(DesktopError),
                before_sleep=again,
            ):
                with attempt:
                    path.unlink(missing_ok=True)
                    self._export_once(path)
        except RetryError as gave_up:
            raise DesktopError(f"{gave_up.last_attempt.exception()} ({tries} tries)") from None
        logger.info("exported the parcel list to {}", path)
        return path

    def _open(self, menu: tuple[str, ...], title: str) -> Window:
        """The dialog ``title``, opened from the main window with the keys ``menu``."""
        self.desktop.point_into(self.require_running())
        for combo in menu:
            self.desktop.keys(combo)
        dialog = self.desktop.wait_for(title, timeout_s=self.spec.timeout_s)
        assert dialog is not None
        return dialog

    def _export_once(self, path: Path) -> None:
        d, spec = self.desktop, self.spec
        d.point_into(self._open(spec.export_menu, spec.export_dialog))
        d.type(str(path))
        d.keys("enter")
        d.wait_for(spec.export_dialog, timeout_s=spec.timeout_s, gone=True)
        deadline = time.monotonic() + spec.timeout_s
        while not path.is_file():
            if time.monotonic() > deadline:
                raise DesktopError(f"the terminal wrote no export at {path}")
            time.sleep(0.05)

    def link(self, parcel_id: str, target: str) -> None:
        """Type one link into the link form and press Enter (verified elsewhere, on the web)."""
        d, spec = self.desktop, self.spec
        dialog = d.find(spec.link_dialog) or self._open(spec.link_menu, spec.link_dialog)
        d.click(dialog, spec.link_parcel_at)
        d.type(parcel_id)
        d.keys("tab")
        d.type(target)
        d.keys("enter")
