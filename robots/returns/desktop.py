"""A desktop program on an X display, driven like a person: pyautogui for the mouse and keys,
python-xlib to find windows by title (pyautogui cannot list windows on Linux).

No window manager is assumed (Xvfb has none): keyboard focus follows the pointer, so every
step first puts the pointer inside the window it types into.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from robots.errors import DesktopError


@dataclass(frozen=True)
class Window:
    id: int
    title: str
    x: int
    y: int
    width: int
    height: int


class Desktop:
    """One X display. Created per run; holds no global state beyond pyautogui's own."""

    def __init__(self, display: str | None = None, *, step_pause_s: float = 0.03) -> None:
        name = display or os.environ.get("DISPLAY", "")
        if not name:
            raise DesktopError("no X display: set DISPLAY (e.g. DISPLAY=:99 with Xvfb running)")
        os.environ["DISPLAY"] = name
        os.environ.setdefault("XDG_SESSION_TYPE", "x11")  # pyautogui's screenshots need it
        authority = Path(os.environ.get("XAUTHORITY", Path.home() / ".Xauthority"))
        if not authority.exists():  # python-xlib refuses to start without the file
            authority.touch(mode=0o600)
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError

        # python-xlib prints a warning to stdout when the authority file is empty (Xvfb
        # needs no authority); stdout belongs to the CLI
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                self._x = xdisplay.Display(name)
            except DisplayError as exc:
                raise DesktopError(f"cannot open X display {name}: {exc}") from None
            import pyautogui

        pyautogui.PAUSE = step_pause_s
        self.gui: Any = pyautogui
        self.name = name
        self._net_wm_name = self._x.intern_atom("_NET_WM_NAME")
        self._utf8 = self._x.intern_atom("UTF8_STRING")

    def close(self) -> None:
        self._x.close()

    @contextlib.contextmanager
    def held(self, *, timeout_s: float = 120.0) -> Iterator[None]:
        """The display's keyboard and mouse, for this process only while the block runs.

        Every process that types on one display (a run exporting, cluster workers linking)
        takes this lock around each whole step, so two never type into one form at once. It
        is a lock file in the temporary directory, released by the kernel if the holder dies.
        """
        name = re.sub(r"[^0-9A-Za-z.]+", "_", self.name)
        path = Path(tempfile.gettempdir()) / f"robots-desktop-{name}.lock"
        with path.open("a+") as f:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DesktopError(
                            f"DISPLAY={self.name} stayed in another process's hands for "
                            f"{timeout_s:.0f} s (lock file {path})"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- windows --------------------------------------------------------------------------
    def _title(self, win: Any) -> str:
        try:
            prop = win.get_full_property(self._net_wm_name, self._utf8)
            if prop is not None and prop.value:
                value = prop.value
                return value.decode("utf-8") if isinstance(value, bytes) else str(value)
            name = win.get_wm_name()
            return name if isinstance(name, str) else ""
        except Exception:  # a window can vanish between listing and asking: not ours then
            return ""

    def windows(self) -> list[Window]:
        """Viewable top-level windows that have a title, front-most last."""
        root = self._x.screen().root
        found: list[Window] = []
        for win in root.query_tree().children:
            try:
                if win.get_attributes().map_state != 2:  # IsViewable
                    continue
                geometry = win.get_geometry()
            except Exception:  # vanished meanwhile
                continue
            title = self._title(win)
            if title:
                found.append(
                    Window(win.id, title, geometry.x, geometry.y, geometry.width, geometry.height)
                )
        return found

    def find(self, *parts: str) -> Window | None:
        """The front-most window whose title contains every part."""
        matches = [w for w in self.windows() if all(p in w.title for p in parts)]
        return matches[-1] if matches else None

    def wait_for(self, *parts: str, timeout_s: float = 10.0, gone: bool = False) -> Window | None:
        """Wait until a window with these title parts appears (or, with ``gone``, disappears)."""
        deadline = time.monotonic() + timeout_s
        while True:
            window = self.find(*parts)
            if (window is None) == gone:
                return window
            if time.monotonic() > deadline:
                state = "still open" if gone else "did not appear"
                raise DesktopError(
                    f"window {' / '.join(parts)!r} {state} after {timeout_s:.0f} s "
                    f"(open: {', '.join(w.title for w in self.windows()) or 'none'})"
                )
            time.sleep(0.05)

    # -- hands ----------------------------------------------------------------------------
    def click(self, window: Window, at: tuple[int, int]) -> None:
        self.gui.click(window.x + at[0], window.y + at[1])

    def point_into(self, window: Window) -> None:
        """Keyboard focus follows the pointer without a window manager."""
        self.gui.moveTo(window.x + window.width // 2, window.y + window.height // 2)

    def type(self, text: str) -> None:
        if not text.isascii():
            raise DesktopError(f"cannot type non-ASCII text {text!r} with the keyboard")
        self.gui.write(text)

    def keys(self, combo: str) -> None:
        """'enter', 'tab', 'f10', or a chord like 'ctrl+l'."""
        parts = combo.lower().split("+")
        if len(parts) == 1:
            self.gui.press(parts[0])
        else:
            self.gui.hotkey(*parts)

    def screenshot(self, path: Path) -> str | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.gui.screenshot(str(path))
        except Exception as exc:  # evidence must never turn a result into a failure
            logger.warning("desktop screenshot {} failed: {}", path.name, exc)
            return None
        return str(path)
