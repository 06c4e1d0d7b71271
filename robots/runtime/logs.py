"""Per-run logging: a human log and a JSON-lines log under ``logs/<run-id>/``, secrets masked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from robots.runtime.redaction import Redactor

HUMAN_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level:<8} | {extra[item]:<20} | {message}"


def _on_console(record: Any) -> bool:
    """``logger.bind(file_only=True)``: for the run's files, not the console (the CLI prints
    that message itself, once, as its first line)."""
    return not record["extra"].get("file_only")


def _console_format(record: Any) -> str:
    item = "" if record["extra"].get("item", "-") == "-" else "{extra[item]}: "
    return "{level}: " + item + "{message}\n"


def _redacting_patcher(redact: Redactor) -> Any:
    def patch(record: Any) -> None:
        record["message"] = redact(record["message"])
        record["extra"] = {
            k: redact(v) if isinstance(v, str) else v for k, v in record["extra"].items()
        }
        if record["exception"] is not None:
            # exception text is rendered later from the exception object; mask its args now
            exc = record["exception"].value
            if exc is not None and exc.args:
                exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)

    return patch


@contextmanager
def run_logging(
    run_dir: Path, redact: Redactor, *, console: Any = None, console_level: str = "WARNING"
) -> Iterator[None]:
    """Send loguru to the run's files (and the console) for the duration of a run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    logger.remove()
    logger.configure(patcher=_redacting_patcher(redact), extra={"item": "-"})
    ids = [
        logger.add(
            run_dir / "run.log",
            format=HUMAN_FORMAT,
            level="DEBUG",
            encoding="utf-8",
            enqueue=False,
            backtrace=False,
            diagnose=False,
        ),
        logger.add(
            run_dir / "run.jsonl",
            serialize=True,
            level="DEBUG",
            enqueue=False,
            backtrace=False,
            diagnose=False,
        ),
    ]
    if console is not None:
        ids.append(
            logger.add(
                lambda m: console.print(m.rstrip("\n"), markup=False, highlight=False),
                level=console_level,
                format=_console_format,
                filter=_on_console,
                colorize=False,
                backtrace=False,
                diagnose=False,
            )
        )
    else:
        ids.append(
            logger.add(
                sys.stderr,
                level=console_level,
                format=_console_format,
                filter=_on_console,
                backtrace=False,
                diagnose=False,
            )
        )
    try:
        yield
    finally:
        for handler_id in ids:
            logger.remove(handler_id)
        logger.configure(patcher=None)
        quiet_console()


def quiet_console() -> None:
    """Outside a run, warnings only and without logger internals (no module:function:line):
    what ops read on a terminal is the message."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format=_console_format, backtrace=False, diagnose=False)
